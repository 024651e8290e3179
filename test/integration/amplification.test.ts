// What a client can make the upstream do (hardening finding 5): a "not
// found" is believed for a while, junk Accept headers do not multiply
// requests, a tags list is fetched once however many pages clients ask for,
// and one client's misses are limited so it cannot spend the upstream's
// pull budget for everyone.
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Pool } from 'undici'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { image, pushImage, pushManifest, OCI_MANIFEST } from '../helpers/images.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'

let upstream: Registry
let ferry: Ferry

t.before(async () => {
  upstream = await startRegistry()
  const img = await image()
  await pushImage(upstream.url, 'lib/app', 'v1', img)
  // 300 tags on one repository
  for (let i = 0; i < 300; i++) await pushManifest(upstream.url, 'lib/app', `t${String(i).padStart(3, '0')}`, img.manifest)
  ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true, tagTTL: '5m' }], limits: { upstreamFetchesPerSecond: 5, upstreamFetchBurst: 100 } } })
})
t.teardown(async () => { await ferry?.stop(); await upstream?.stop() })

async function burst (n: number, request: (i: number) => { path: string, headers?: Record<string, string> }, localAddress?: string): Promise<number[]> {
  const pool = new Pool(ferry.url, { connections: 20, ...(localAddress !== undefined ? { localAddress } : {}) })
  try {
    return await Promise.all(Array.from({ length: n }, async (_, i) => {
      const r = request(i)
      const res = await pool.request({ method: 'GET', path: r.path, headers: r.headers ?? {} })
      await res.body.dump()
      return res.statusCode
    }))
  } finally { await pool.close() }
}

t.test('2,000 requests for one digest the upstream does not have: it is asked once', async t => {
  const digest = `sha256:${randomBytes(32).toString('hex')}`
  const statuses = await burst(2000, () => ({ path: `/v2/lib/app/blobs/${digest}` }), '127.0.0.2')
  t.ok(statuses.every(s => s === 404), 'every one is 404 BLOB_UNKNOWN')
  t.equal(upstream.count('GET', digest) + upstream.count('HEAD', digest), 1, 'the upstream was asked once')
  const tag = await burst(500, () => ({ path: '/v2/lib/app/manifests/no-such-tag', headers: { accept: OCI_MANIFEST } }), '127.0.0.2')
  t.ok(tag.every(s => s === 404))
  t.ok(upstream.count('GET', 'manifests/no-such-tag') + upstream.count('HEAD', 'manifests/no-such-tag') <= 1, 'an unknown tag too')
})

t.test('200 junk Accept variants of a cached tag: no upstream request', async t => {
  const first = await get(`${ferry.url}/v2/lib/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(first.status, 200)
  // the tag is written to the state just after the answer
  await new Promise(resolve => setTimeout(resolve, 300))
  const before = upstream.count('GET', 'manifests/v1') + upstream.count('HEAD', 'manifests/v1')
  const statuses = await burst(200, i => ({ path: '/v2/lib/app/manifests/v1', headers: { accept: `${OCI_MANIFEST}, application/x-junk-${i}; q=0.${i % 10}` } }), '127.0.0.3')
  t.ok(statuses.every(s => s === 200))
  t.equal(upstream.count('GET', 'manifests/v1') + upstream.count('HEAD', 'manifests/v1') - before, 0, 'all of them answered from the one cached entry')
})

t.test('300 different tags list pages: the upstream is asked once, and one answer is kept', async t => {
  const before = upstream.count('GET', 'tags/list')
  let next: string | undefined = '/v2/lib/app/tags/list?n=1'
  const seen: string[] = []
  const statuses: number[] = []
  for (let i = 0; i < 301 && next !== undefined; i++) {
    const page = await get(`${ferry.url}${next}`)
    statuses.push(page.status)
    seen.push(...page.json<{ tags: string[] }>().tags)
    next = /<([^>]+)>; rel="next"/.exec(page.header('link') ?? '')?.[1]
  }
  t.ok(statuses.every(s => s === 200), 'every page 200')
  t.equal(seen.length, 301, 'every tag, one page each')
  t.same(seen, [...seen].sort(), 'in order')
  const varied = await burst(300, i => ({ path: `/v2/lib/app/tags/list?n=${i + 1}&last=t${String(i).padStart(3, '0')}` }), '127.0.0.4')
  t.ok(varied.every(s => s === 200))
  t.equal(upstream.count('GET', 'tags/list') - before, 1, 'the upstream listed the tags once for 600 pages')
  const kept = readdirSync(join(ferry.data, 'state', 'lists', 'lib', 'app', '_lists'))
  t.equal(kept.length, 1, 'one answer kept for the repository')
})

t.test('one client asking for many things the cache does not hold is limited; another client is not', async t => {
  const before = upstream.requests().length
  const statuses = await burst(300, () => ({ path: `/v2/lib/app/blobs/sha256:${randomBytes(32).toString('hex')}` }), '127.0.0.5')
  const asked = upstream.requests().length - before
  t.ok(asked <= 120, `300 random digests from one client cost the upstream ${asked} requests (burst 100, 5 a second)`)
  t.ok(statuses.filter(s => s === 429).length >= 180, `${statuses.filter(s => s === 429).length} answered 429`)
  // the budget refills at 5 a second: on a loaded machine the first of these can find a new token, not all ten
  const more = await Promise.all(Array.from({ length: 10 }, async () => await get(`${ferry.url}/v2/lib/app/blobs/sha256:${randomBytes(32).toString('hex')}`, {}, 'GET', { localAddress: '127.0.0.5' })))
  const limited = more.find(r => r.status === 429) ?? more[0]!
  t.ok(more.filter(r => r.status === 429).length >= 5, `${more.filter(r => r.status === 429).length} of 10 more answered 429`)
  t.equal(ociError(limited)?.code, 'TOOMANYREQUESTS')
  t.ok(Number(limited.header('retry-after')) >= 1, 'with Retry-After')
  t.ok(more.every(r => r.status === 429 || r.status === 404), 'the rest: not found upstream')
  t.equal((await get(`${ferry.url}/v2/lib/app/manifests/v1`, { accept: OCI_MANIFEST }, 'GET', { localAddress: '127.0.0.5' })).status, 200, 'what is cached still pulls')
  const other = await get(`${ferry.url}/v2/lib/app/blobs/sha256:${randomBytes(32).toString('hex')}`, {}, 'GET', { localAddress: '127.0.0.6' })
  t.equal(other.status, 404, 'another client has its own budget')
})
