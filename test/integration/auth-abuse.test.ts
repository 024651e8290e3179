// Logins under attack (hardening findings 1, 2, 14 and parts of 9): bcrypt
// runs off the event loop, once per credential however many requests carry
// it, and a flood of guesses is refused with 429 instead of stalling the
// process; the failed-login limits count an attempt when it starts and
// cannot be used to lock a user out; the audit log names the user tried,
// token requests and their refused scopes; a user removed from htpasswd
// loses their unexpired token; replication-secret guesses are throttled;
// the audit log rotates at maxBytes across restarts.
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'

import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { Pool } from 'undici'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { registerFile, registerSecret } from '../helpers/secrets.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)
const ALICE = 'alice-Abuse-Secret-1'
const BOB = 'bob-Abuse-Secret-2'
const SECRET = 'abuse-replication-secret'
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

function writeUsers (dir: string, users: Record<string, string>): void {
  // cost 10: what `ferry passwd` and `htpasswd -B` write
  writeFileSync(join(dir, 'htpasswd'), Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 10)}`).join('\n') + '\n')
}

async function startAuthFerry (dir: string, extra: Record<string, unknown> = {}): Promise<Ferry> {
  return await startFerry({
    config: {
      upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }],
      auth: {
        htpasswd: join(dir, 'htpasswd'),
        access: [{ repositories: ['team/**'], allow: { 'user:alice': 'writer', 'user:bob': 'reader' } }],
        ...extra,
      },
      audit: { file: join(dir, 'audit.jsonl') },
    },
  })
}

async function metric (f: Ferry, name: string, label = ''): Promise<number> {
  const text = (await get(`${f.url}/metrics`)).body.toString()
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label) && !line.startsWith('#')) sum += Number(line.split(' ').pop())
  return sum
}

/** `n` requests over `connections` pipelining connections from `from`; their statuses. */
async function flood (url: string, n: number, headers: (i: number) => Record<string, string>, opts: { connections?: number, from?: string } = {}): Promise<number[]> {
  const pool = new Pool(url, { connections: opts.connections ?? 10, pipelining: 10, ...(opts.from !== undefined ? { localAddress: opts.from } : {}) })
  try {
    return await Promise.all(Array.from({ length: n }, async (_, i) => {
      try {
        const r = await pool.request({ method: 'GET', path: '/v2/', headers: headers(i) })
        await r.body.dump()
        return r.statusCode
      } catch {
        return 0
      }
    }))
  } finally {
    await pool.close()
  }
}

/** The slowest /healthz answer while `during` runs, in ms. */
async function slowestHealth (url: string, during: Promise<unknown>): Promise<number> {
  let done = false
  void during.finally(() => { done = true })
  let worst = 0
  while (!done) {
    const t0 = performance.now()
    await get(`${url}/healthz`)
    worst = Math.max(worst, performance.now() - t0)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return worst
}

t.test('logins right after a start: bcrypt off the event loop, one check per credential however many requests carry it', async t => {
  registerSecret(ALICE, BOB)
  const dir = scratchDir('ferry-abuse-')
  // a CI fleet of 60 accounts, each with its own password, all logging in at once
  const fleet = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`ci${i}`, `fleet-Password-${i}`]))
  registerSecret(...Object.values(fleet))
  writeUsers(dir, { alice: ALICE, ...fleet })
  const f = await startAuthFerry(dir)
  t.teardown(() => f.stop())
  const fleetLoad = flood(f.url, 60, i => ({ authorization: basic(`ci${i}`, fleet[`ci${i}`]!) }), { connections: 60 })
  const worstFleet = await slowestHealth(f.url, fleetLoad)
  t.equal((await fleetLoad).filter(s => s === 200).length, 60, 'every account is let in')
  t.ok(worstFleet < 1000, `/healthz answered within ${Math.round(worstFleet)} ms while 60 passwords were checked`)
  const before = await metric(f, 'ferry_auth_password_checks_total')
  const load = flood(f.url, 200, () => ({ authorization: basic('alice', ALICE) }), { connections: 200 })
  const statuses = await load
  t.equal(statuses.filter(s => s === 200).length, 200, 'alice\'s 200 requests at once are answered 200')
  t.equal(await metric(f, 'ferry_auth_password_checks_total') - before, 1, 'one password check for all of them')
})

t.test('a flood of guesses from many addresses: 429s, a responsive process, and a prompt SIGTERM', async t => {
  const dir = scratchDir('ferry-abuse-')
  writeUsers(dir, { alice: ALICE })
  const f = await startAuthFerry(dir)
  // 8 addresses with 12 connections each, all at once, at different users: the limits admit them, the pool's queue (64) does not
  const load = Promise.all(Array.from({ length: 8 }, (_, a) =>
    flood(f.url, 12, i => ({ authorization: basic(`user${i}`, `guess-${a}-${i}`) }), { connections: 12, from: `127.0.0.${a + 2}` }))).then(r => r.flat())
  const worst = await slowestHealth(f.url, load)
  const statuses = await load
  t.ok(worst < 1000, `/healthz answered within ${Math.round(worst)} ms during 96 concurrent guesses`)
  t.ok(statuses.every(s => s === 401 || s === 429), 'every guess is refused (401) or turned away (429)')
  t.ok(statuses.filter(s => s === 429).length > 0, `${statuses.filter(s => s === 429).length} turned away with 429`)
  t.ok(await metric(f, 'ferry_auth_logins_refused_total') > 0, 'counted in ferry_auth_logins_refused_total')
  // again, and stop in the middle of it
  const again = Promise.all(Array.from({ length: 8 }, (_, a) =>
    flood(f.url, 100, i => ({ authorization: basic(`other${i}`, `guess-${a}-${i}`) }), { connections: 12, from: `127.0.1.${a + 2}` })))
  await new Promise(resolve => setTimeout(resolve, 300))
  const t0 = performance.now()
  await f.stop()
  await again
  t.equal(f.proc.child.signalCode, null, `ferry left on SIGTERM by itself (in ${Math.round(performance.now() - t0)} ms), not SIGKILL`)
})

t.test('guesses are counted as they start; a user cannot be locked out from elsewhere', async t => {
  const dir = scratchDir('ferry-abuse-')
  writeUsers(dir, { alice: ALICE, bob: BOB })
  const f = await startAuthFerry(dir)
  t.teardown(() => f.stop())
  const before = await metric(f, 'ferry_auth_password_checks_total')
  const statuses = await flood(f.url, 200, i => ({ authorization: basic('alice', `wrong-${i}`) }), { from: '127.0.0.2' })
  const checks = await metric(f, 'ferry_auth_password_checks_total') - before
  t.ok(checks <= 10, `200 concurrent wrong passwords from one address: ${checks} checked`)
  t.equal(statuses.filter(s => s === 429).length, 200 - checks, 'the others: 429')
  const limited = await get(`${f.url}/v2/`, { authorization: basic('alice', 'another-guess') }, 'GET')
  t.equal(limited.status, 401, 'the limit is per (user, address): from another address alice is checked as usual')
  // an attacker on many addresses: alice's logins slow down to one a second, they do not stop
  await Promise.all(Array.from({ length: 5 }, (_, a) => flood(f.url, 10, i => ({ authorization: basic('alice', `spread-${a}-${i}`) }), { connections: 1, from: `127.0.2.${a + 2}` })))
  let ok = false
  let tries = 0
  for (; tries < 5 && !ok; tries++) {
    const r = await get(`${f.url}/v2/team/app/tags/list`, { authorization: basic('alice', ALICE) })
    ok = r.status !== 401 && r.status !== 429
    if (!ok) await new Promise(resolve => setTimeout(resolve, 1100))
  }
  t.ok(ok, `alice still gets in (after ${tries} tries)`)
  const bobRes = await get(`${f.url}/v2/`, { authorization: basic('bob', BOB) })
  t.equal(bobRes.status, 200, 'and bob, from the attacker\'s address, is not affected')

  // the audit log names the user that was tried, for ferry audit --user
  const { stdout } = await run(process.execPath, [CLI, 'audit', '--config', f.configPath, '--user', 'alice'])
  const lines = stdout.trim().split('\n').map(l => JSON.parse(l) as { who: string, decision: string, status: number })
  t.ok(lines.filter(l => l.decision === 'deny' && (l.status === 401 || l.status === 429)).length >= 200, `ferry audit --user alice shows the attacks on alice (${lines.length} lines)`)
})

t.test('token requests are audited (a refused login, each scope granted or not); a removed user loses an unexpired token', async t => {
  const dir = scratchDir('ferry-abuse-')
  registerFile(join(dir, 'audit.jsonl'))
  writeUsers(dir, { alice: ALICE, bob: BOB })
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const f = await startAuthFerry(dir, { token: { keyFile: join(dir, 'token.pem'), service: 'abuse' } })
  t.teardown(() => f.stop())
  const failed = await get(`${f.url}/token?service=abuse&scope=repository:team/app:pull`, { authorization: basic('bob', 'not-bobs') })
  t.equal(failed.status, 401)
  const granted = await get(`${f.url}/token?service=abuse&scope=repository:team/app:pull,push`, { authorization: basic('bob', BOB) })
  t.equal(granted.status, 200)
  const token = granted.json<{ token: string }>().token
  registerSecret(token)
  await new Promise(resolve => setTimeout(resolve, 300))
  const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  t.ok(audit.some(l => l.who === 'bob' && l.action === 'token' && l.decision === 'deny' && l.status === 401), 'the refused login: who was tried')
  t.ok(audit.some(l => l.who === 'bob' && l.action === 'token:pull' && l.repository === 'team/app' && l.decision === 'allow'), 'the scope granted')
  t.ok(audit.some(l => l.who === 'bob' && l.action === 'token:push' && l.repository === 'team/app' && l.decision === 'deny'), 'the scope refused')

  const withToken = async (): Promise<number> => (await get(`${f.url}/v2/team/app/tags/list`, { authorization: `Bearer ${token}` })).status
  t.not(await withToken(), 401, 'bob\'s token works')
  writeUsers(dir, { alice: ALICE })
  await new Promise(resolve => setTimeout(resolve, 1200))
  const after = await get(`${f.url}/v2/team/app/tags/list`, { authorization: `Bearer ${token}` })
  t.equal(after.status, 401, 'removed from htpasswd: his unexpired token stops working')
  t.match(ociError(after)?.message ?? '', /no longer exists/)
})

t.test('replication-secret guesses are throttled', async t => {
  const f = await startFerry({
    config: { upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }], replication: { secretEnv: 'ABUSE_SECRET' } },
    env: { ABUSE_SECRET: SECRET },
  })
  registerSecret(SECRET)
  t.teardown(() => f.stop())
  const statuses: number[] = []
  for (let i = 0; i < 60; i++) statuses.push((await get(`${f.url}/v2/any/repo/blobs/uploads/`, { authorization: `Bearer guess-${i}` }, 'POST')).status)
  t.equal(statuses.slice(0, 50).filter(s => s === 401).length, 50, 'guesses are refused')
  t.ok(statuses.slice(50).every(s => s === 429), 'then turned away')
  const right = await get(`${f.url}/v2/any/repo/blobs/uploads/`, { authorization: `Bearer ${SECRET}` }, 'POST', { localAddress: '127.0.0.9' })
  t.equal(right.status, 202, 'the right secret from another address still works')
})

t.test('the audit log rotates at maxBytes across restarts', async t => {
  const dir = scratchDir('ferry-abuse-')
  const file = join(dir, 'audit.jsonl')
  const config = { upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }], audit: { file, maxBytes: '4KiB' } }
  for (let restart = 0; restart < 3; restart++) {
    const f = await startFerry({ config })
    for (let i = 0; i < 10; i++) await get(`${f.url}/v2/`)
    await f.stop()
  }
  t.ok(existsSync(`${file}.1`), 'rotated')
  t.ok(statSync(file).size <= 4096 + 400, `the file stays near maxBytes (${statSync(file).size} bytes)`)
})
