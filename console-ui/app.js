// ferry's console: a page per hash route, each drawn from the JSON API
// (/_ferry/api/v1, described at /_ferry/api/v1/openapi.json). Every text
// from the server goes into the page as text, never as HTML: repository
// names, tags and annotations come from upstreams and pushers.
const API = '/_ferry/api/v1/'
const main = document.getElementById('main')
let me = { user: 'anonymous', kind: 'anonymous', admin: false, authRequired: false }

// ---- helpers ---------------------------------------------------------------

/** An element: attributes (on* are listeners), then children (strings become text). */
function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (v === true) el.setAttribute(k, '')
    else el.setAttribute(k, String(v))
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c))
  return el
}

function csrf () {
  const m = /(?:^|;\s*)ferry_csrf=([^;]*)/.exec(document.cookie)
  return m === null ? '' : m[1]
}

class ApiError extends Error {
  constructor (status, body) {
    super(body?.errors?.[0]?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.errors?.[0]?.code
  }
}

/** Moves within the console so far: a page's answer that arrives after the next move is dropped, not drawn over it. */
let moves = 0
class Stale extends Error {}

async function api (path, opts = {}) {
  const move = moves
  const headers = { accept: 'application/json' }
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.method !== undefined && opts.method !== 'GET') headers['x-ferry-csrf'] = csrf()
  const res = await fetch(API + path, { method: opts.method ?? 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), credentials: 'same-origin' })
  const body = await res.json().catch(() => undefined)
  if (opts.method === undefined && move !== moves) throw new Stale()
  if (!res.ok) throw new ApiError(res.status, body)
  return body
}

function qs (params) {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s === '' ? '' : `?${s}`
}

function bytes (n) {
  if (n === null || n === undefined) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}
const pct = r => r === null || r === undefined ? '–' : `${(r * 100).toFixed(1)}%`
const when = t => t === null || t === undefined ? '–' : new Date(t).toLocaleString()
const short = d => typeof d === 'string' && d.startsWith('sha256:') ? d.slice(0, 19) : d

function table (headers, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty)
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, headers.map(x => typeof x === 'string' ? h('th', { scope: 'col' }, x) : h('th', { scope: 'col', class: x.cls }, x.text)))),
    h('tbody', {}, rows.map(r => h('tr', {}, r.map(c => c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))))))
}
const num = v => h('td', { class: 'num' }, v)

function card (label, value, id) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value', 'data-figure': id }, value))
}

let shown = false
function show (title, ...content) {
  document.title = `${title} · ferry`
  main.replaceChildren(h('h1', {}, title), ...content)
  main.dataset.page = title
  // after a move within the console, a screen reader starts at the new page; the first page leaves focus at the top
  if (shown) main.focus({ preventScroll: true })
  shown = true
}

function fail (err) {
  if (err instanceof Stale) return
  if (err instanceof ApiError && err.status === 401 && me.authRequired) { location.hash = '#/login'; return }
  main.replaceChildren(h('div', { class: 'error', role: 'alert' }, err.message))
}

// ---- pages -----------------------------------------------------------------

async function overviewPage () {
  const o = await api('overview')
  const w = o.windows
  const saved = w['24h'].bytesFromCache
  show(`Region ${o.region}`,
    h('div', { class: 'cards' },
      card('Proxies seen', String(o.proxies.length), 'proxies'),
      card('Cache used', `${bytes(o.cache.bytes)} of ${bytes(o.cache.maxBytes)}`, 'cache-bytes'),
      card('Blobs cached', String(o.cache.blobs), 'cache-blobs'),
      card('Hit ratio, 1 h', pct(w['1h'].hitRatio), 'hit-1h'),
      card('Hit ratio, 24 h', pct(w['24h'].hitRatio), 'hit-24h'),
      card('Hit ratio, 7 d', pct(w['7d'].hitRatio), 'hit-7d'),
      card('Served from cache, 24 h', bytes(saved), 'saved-24h'),
      card('Fetched upstream, 24 h', bytes(w['24h'].bytesFromUpstream), 'fetched-24h'),
      card('Manifest pulls, 24 h', String(w['24h'].pulls), 'pulls-24h')),
    h('div', { class: 'chart', id: 'chart', role: 'img', 'aria-label': 'Cache hits and misses per five minutes over the last 24 hours' }),
    h('h2', {}, 'By upstream, 24 h'),
    table(['Upstream', { text: 'Hits', cls: 'num' }, { text: 'Misses', cls: 'num' }, { text: 'Hit ratio', cls: 'num' }, { text: 'From cache', cls: 'num' }, { text: 'From upstream', cls: 'num' }],
      Object.entries(w['24h'].byUpstream).map(([u, c]) => [u, num(c.hits), num(c.misses), num(pct(c.hitRatio)), num(bytes(c.bytesFromCache)), num(bytes(c.bytesFromUpstream))]), 'No pulls in the last 24 hours.'),
    h('h2', {}, 'Upstreams'), upstreamTable(o.upstreams),
    h('h2', {}, 'Replication'), replicationTable(o.replication))
  drawChart(o.series)
}

function drawChart (series) {
  const el = document.getElementById('chart')
  if (el === null) return
  if (series.length === 0 || typeof uPlot === 'undefined') { el.append(h('p', { class: 'muted' }, 'No traffic recorded yet.')); return }
  const style = getComputedStyle(document.documentElement)
  const ok = style.getPropertyValue('--ok').trim(); const bad = style.getPropertyValue('--bad').trim(); const fg = style.getPropertyValue('--fg').trim()
  const axis = { stroke: fg, grid: { stroke: style.getPropertyValue('--line').trim() } }
  // every five minutes of the last 24 hours, none missing: a quiet bucket is a zero, not a gap
  const step = 5 * 60_000
  const end = Math.floor(Date.now() / step) * step
  const byT = new Map(series.map(p => [p.t, p]))
  const points = []
  for (let t = end - 24 * 3600_000 + step; t <= end; t += step) points.push(byT.get(t) ?? { t, hits: 0, misses: 0 })
  // eslint-disable-next-line no-undef
  new uPlot({
    width: Math.max(300, Math.min(1160, el.clientWidth - 16)), height: 220,
    series: [{}, { label: 'hits', stroke: ok, width: 2 }, { label: 'misses', stroke: bad, width: 2 }],
    axes: [axis, axis],
  }, [points.map(p => p.t / 1000), points.map(p => p.hits), points.map(p => p.misses)], el)
}

function upstreamTable (ups) {
  return table(['Upstream', 'Status', 'Last success', 'Last error', { text: 'Latency', cls: 'num' }, 'Rate limit left'],
    ups.map(u => [h('span', {}, u.name, ' ', h('span', { class: 'muted mono' }, u.url)), h('span', { class: `badge ${u.status}`, 'data-upstream-status': u.name }, u.status),
      when(u.lastSuccessAt), u.lastErrorAt === null ? '–' : `${when(u.lastErrorAt)} (${u.lastError})`, num(u.latencyMs === null ? '–' : `${u.latencyMs} ms`),
      h('span', { 'data-rate-limit': u.name }, rateLimit(u.rateLimit))]), 'No upstreams configured.')
}

/** What the upstream last said of its rate limit: "76 of 100 per 6 h", or – when it says nothing. */
function rateLimit (r) {
  if (r === null || r === undefined) return '–'
  const window = r.windowSeconds === null ? '' : ` per ${r.windowSeconds % 3600 === 0 ? `${r.windowSeconds / 3600} h` : `${r.windowSeconds} s`}`
  return `${r.remaining}${r.limit === null ? '' : ` of ${r.limit}`}${window}`
}

function replicationTable (rep) {
  return table(['Peer', { text: 'Events behind', cls: 'num' }, { text: 'Bytes behind', cls: 'num' }, { text: 'Oldest waiting', cls: 'num' }, { text: 'Dead letters', cls: 'num' }],
    rep.map(r => [r.peer, num(r.eventsBehind ?? '?'), num(bytes(r.bytesBehind)), num(r.oldestMs === null ? '–' : `${Math.round(r.oldestMs / 1000)} s`), num(r.deadLetters ?? '?')]), 'This region replicates to no peer.')
}

async function upstreamsPage () {
  const o = await api('overview')
  show('Upstreams', upstreamTable(o.upstreams))
}

async function replicationPage () {
  const o = await api('overview')
  show('Replication', replicationTable(o.replication))
}

async function repositoriesPage (params) {
  const q = params.get('q') ?? ''
  const last = params.get('last') ?? undefined
  const r = await api(`repositories${qs({ q, last, n: 50 })}`)
  const search = h('form', { class: 'inline', role: 'search', onsubmit: e => { e.preventDefault(); location.hash = `#/repositories${qs({ q: e.target.q.value })}` } },
    h('label', {}, 'Name contains', h('input', { name: 'q', type: 'search', value: q, autocomplete: 'off' })), h('button', { type: 'submit' }, 'Search'))
  show('Repositories', search,
    h('p', { class: 'muted' }, `${r.total} repositor${r.total === 1 ? 'y' : 'ies'}`),
    table(['Name', 'Kind', 'Upstream', { text: 'Tags', cls: 'num' }],
      r.repositories.map(x => [h('a', { href: `#/repository/${encodeURIComponent(x.name)}` }, x.name), x.kind, x.upstream ?? '–', num(x.tags)]), 'No repository matches.'),
    r.next === undefined ? '' : h('p', {}, h('a', { href: `#/repositories${qs({ q, last: r.next })}` }, 'Next page')))
}

async function repositoryPage (name) {
  const r = await api(`tags${qs({ repository: name })}`)
  show(name, table(['Tag', 'Digest', 'Type', 'Platforms', { text: 'Size', cls: 'num' }, { text: 'Pulls', cls: 'num' }, 'Last pulled', 'Updated'],
    r.tags.map(t => [h('a', { href: `#/image/${encodeURIComponent(name)}/${encodeURIComponent(t.tag)}` }, t.tag), h('code', { title: t.digest }, short(t.digest)), mediaLabel(t.mediaType),
      t.platforms.join(', ') || '–', num(bytes(t.size)), num(t.pulls), when(t.lastPulledAt), when(t.updatedAt)]), 'No tags cached for this repository.'))
}

function mediaLabel (t) {
  if (t.includes('index') || t.includes('list')) return 'index'
  if (t.includes('manifest')) return 'image'
  return t
}

async function imagePage (name, reference) {
  const m = await api(`image${qs({ repository: name, reference })}`)
  const host = location.host
  const ref = reference.includes(':') ? `${host}/${name}@${reference}` : `${host}/${name}:${reference}`
  const plain = location.protocol === 'http:'
  const commands = [
    ['docker', `docker pull ${ref}`],
    ['podman', `podman pull${plain ? ' --tls-verify=false' : ''} ${ref}`],
    ['ctr', `ctr images pull${plain ? ' --plain-http' : ''} ${ref}`],
  ]
  const status = h('span', { role: 'status', class: 'muted', id: 'copied' })
  const pulls = commands.map(([tool, cmd]) => {
    const input = h('input', { readonly: true, value: cmd, 'aria-label': `${tool} pull command`, 'data-pull': tool })
    return h('div', { class: 'pull' }, h('span', { class: 'mono' }, tool), input,
      h('button', { type: 'button', 'data-copy': tool, onclick: () => copy(input, status, tool) }, 'Copy'))
  })
  const total = m.layers.reduce((n, l) => n + l.size, 0)
  show(`${name} ${reference.includes(':') ? '@ ' + short(reference) : ': ' + reference}`,
    h('p', {}, h('code', {}, m.digest), ' ', h('span', { class: 'muted' }, `${mediaLabel(m.mediaType)} · ${m.mediaType}`)),
    m.tags.length === 0 ? '' : h('p', {}, 'Tags: ', m.tags.join(', ')),
    h('h2', {}, 'Pull'), ...pulls, status,
    m.manifests.length === 0 ? '' : h('div', {}, h('h2', {}, 'Platforms'),
      table(['Platform', 'Digest', { text: 'Size', cls: 'num' }], m.manifests.map(d => [d.platformName ?? '–', h('a', { href: `#/image/${encodeURIComponent(name)}/${encodeURIComponent(d.digest)}` }, h('code', {}, short(d.digest))), num(bytes(d.size))]))),
    m.config === undefined ? '' : h('div', {}, h('h2', {}, 'Config'), h('p', {}, h('code', {}, m.config.digest), ` · ${bytes(m.config.size)}`)),
    m.layers.length === 0 ? '' : h('div', {}, h('h2', {}, `Layers (${m.layers.length}, ${bytes(total)})`),
      table(['#', 'Digest', 'Type', { text: 'Size', cls: 'num' }], m.layers.map((l, i) => [String(i + 1), h('code', {}, l.digest), l.mediaType, num(bytes(l.size))]))),
    h('h2', {}, 'Referrers'),
    table(['Digest', 'Artifact type', { text: 'Size', cls: 'num' }], m.referrers.map(r => [h('a', { href: `#/image/${encodeURIComponent(name)}/${encodeURIComponent(r.digest)}` }, h('code', {}, short(r.digest))), r.artifactType ?? r.mediaType, num(bytes(r.size))]), 'No signatures, SBOMs or other referrers held.'))
}

async function copy (input, status, tool) {
  try {
    await navigator.clipboard.writeText(input.value)
  } catch {
    input.select()
    document.execCommand('copy')
  }
  status.textContent = `Copied the ${tool} command.`
}

async function auditPage (params) {
  const f = Object.fromEntries(['user', 'repository', 'decision', 'from', 'to', 'offset'].map(k => [k, params.get(k) ?? '']))
  const r = await api(`audit${qs({ ...f, n: 50 })}`)
  const form = h('form', { class: 'inline', role: 'search', onsubmit: e => {
    e.preventDefault()
    const d = new FormData(e.target)
    location.hash = `#/audit${qs(Object.fromEntries([...d].map(([k, v]) => [k, k === 'from' || k === 'to' ? (v === '' ? '' : new Date(v).toISOString()) : v])))}`
  } },
  h('label', {}, 'User', h('input', { name: 'user', value: f.user })),
  h('label', {}, 'Repository (pattern)', h('input', { name: 'repository', value: f.repository })),
  h('label', {}, 'Decision', h('select', { name: 'decision' }, ['', 'allow', 'deny'].map(v => h('option', { value: v, selected: v === f.decision }, v === '' ? 'any' : v)))),
  h('label', {}, 'From', h('input', { name: 'from', type: 'datetime-local' })),
  h('label', {}, 'To', h('input', { name: 'to', type: 'datetime-local' })),
  h('button', { type: 'submit' }, 'Search'))
  const offset = Number(f.offset || 0)
  show('Audit log', form,
    r.note === undefined ? '' : h('p', { class: 'notice' }, r.note),
    h('p', { class: 'muted' }, `${r.total} record${r.total === 1 ? '' : 's'}`),
    table(['Time', 'Who', 'Action', 'Repository', 'Reference', 'Decision', { text: 'Status', cls: 'num' }, 'Client'],
      r.records.map(x => [when(Date.parse(x.time)), `${x.who} (${x.kind})`, x.action, x.repository ?? '–', x.reference === undefined ? '–' : h('code', {}, short(x.reference)), h('span', { class: `badge ${x.decision}` }, x.decision), num(x.status), x.client ?? '']), 'No record matches.'),
    offset + 50 < r.total ? h('p', {}, h('a', { href: `#/audit${qs({ ...f, offset: offset + 50 })}` }, 'Older records')) : '')
}

async function robotsPage () {
  const r = await api('robots')
  const out = h('div', { role: 'status' })
  const form = h('form', { class: 'inline', onsubmit: async e => {
    e.preventDefault()
    const d = new FormData(e.target)
    try {
      const days = d.get('days')
      const made = await api('robots', { method: 'POST', body: { name: d.get('name'), scopes: [{ repositories: String(d.get('patterns')).split(',').map(s => s.trim()).filter(Boolean), role: d.get('role') }], ...(days === '' ? {} : { expiresInDays: Number(days) }) } })
      await robotsPage()
      main.append(h('div', { class: 'notice', role: 'status' }, h('p', {}, `Robot ${made.user} created. Its secret is shown this once:`),
        h('div', { class: 'pull' }, h('input', { readonly: true, value: made.secret, 'aria-label': 'robot secret', 'data-secret': made.name }))))
    } catch (err) { out.replaceChildren(h('div', { class: 'error', role: 'alert' }, err.message)) }
  } },
  h('label', {}, 'Name', h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,62}' })),
  h('label', {}, 'Repositories (patterns, comma-separated)', h('input', { name: 'patterns', required: true, placeholder: 'team-a/**' })),
  h('label', {}, 'Role', h('select', { name: 'role' }, ['reader', 'writer', 'admin'].map(v => h('option', { value: v }, v)))),
  h('label', {}, 'Expires in (days)', h('input', { name: 'days', type: 'number', min: 1, max: 3650 })),
  h('button', { type: 'submit', class: 'primary' }, 'Create robot'))
  show('Robot accounts', h('h2', {}, 'New robot'), form, out,
    table(['Robot', 'Scopes', 'Created', 'Expires', 'State', ''],
      r.robots.map(x => [h('code', {}, x.user), x.scopes.map(s => `${s.repositories.join(', ')} → ${s.role}`).join('; '), when(x.createdAt), when(x.expiresAt),
        x.active ? 'active' : x.revokedAt !== null ? 'revoked' : 'expired',
        x.active ? h('button', { type: 'button', class: 'danger', 'data-revoke': x.name, onclick: async () => {
          if (!confirm(`Revoke ${x.user}? Its secret stops working at once.`)) return
          try { await api(`robots/${encodeURIComponent(x.name)}`, { method: 'DELETE' }); await robotsPage() } catch (err) { fail(err) }
        } }, 'Revoke') : '']), 'No robot accounts yet.'))
}

function loginPage () {
  const msg = h('div', { role: 'alert' })
  const form = h('form', { class: 'login', onsubmit: async e => {
    e.preventDefault()
    const d = new FormData(e.target)
    try {
      me = await api('session', { method: 'POST', body: { username: d.get('username'), password: d.get('password') } })
      header()
      location.hash = '#/'
    } catch (err) { msg.replaceChildren(h('div', { class: 'error' }, err.message)) }
  } },
  h('label', {}, 'User', h('input', { name: 'username', autocomplete: 'username', required: true })),
  h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
  h('button', { type: 'submit', class: 'primary' }, 'Log in'),
  me.oidc ? h('a', { href: `${API}session/oidc`, 'data-oidc': true }, 'Sign in with your organisation (OpenID)') : '', msg)
  show('Log in', form)
}

// ---- frame -----------------------------------------------------------------

function header () {
  const who = document.getElementById('who')
  for (const li of document.querySelectorAll('[data-admin]')) li.hidden = !me.admin
  if (!me.authRequired) { who.replaceChildren(h('span', {}, 'open access (no auth configured)')); return }
  if (me.kind === 'anonymous') { who.replaceChildren(h('a', { href: '#/login' }, 'Log in')); return }
  who.replaceChildren(h('span', { 'data-user': me.user }, `${me.user}${me.admin ? ' (admin)' : ''}`),
    h('button', { type: 'button', onclick: async () => { await api('session', { method: 'DELETE' }).catch(() => {}); me = { ...me, user: 'anonymous', kind: 'anonymous', admin: false }; header(); location.hash = '#/login' } }, 'Log out'))
}

async function route () {
  moves++
  const [path, query] = (location.hash.slice(1) || '/').split('?')
  const params = new URLSearchParams(query ?? '')
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(1)
    a.toggleAttribute('aria-current', target === '/' ? path === '/' : path.startsWith(target))
    if (a.hasAttribute('aria-current')) a.setAttribute('aria-current', 'page')
  }
  try {
    if (path === '/login') return loginPage()
    if (me.authRequired && me.kind === 'anonymous') { location.hash = '#/login'; return }
    if (path === '/') return await overviewPage()
    if (path === '/repositories') return await repositoriesPage(params)
    if (path.startsWith('/repository/')) return await repositoryPage(decodeURIComponent(path.slice('/repository/'.length)))
    if (path.startsWith('/image/')) {
      const rest = path.slice('/image/'.length)
      const cut = rest.lastIndexOf('/')
      return await imagePage(decodeURIComponent(rest.slice(0, cut)), decodeURIComponent(rest.slice(cut + 1)))
    }
    if (path === '/audit') return await auditPage(params)
    if (path === '/robots') return await robotsPage()
    if (path === '/replication') return await replicationPage()
    if (path === '/upstreams') return await upstreamsPage()
    show('Not found', h('p', {}, 'No such page.'))
  } catch (err) { fail(err) }
}

async function start () {
  // the skip link moves focus, not the route (its #main would be taken for a page)
  document.querySelector('.skip').addEventListener('click', e => { e.preventDefault(); main.focus() })
  me = await api('session').catch(() => me)
  header()
  window.addEventListener('hashchange', route)
  await route()
}
start()
