// Webhooks against an HTTP receiver the test runs: CloudEvents for a pull,
// a push, a delete, a push over quota and an upstream going down, each
// signed with the hook's secret; a receiver that is down for a while and
// then returns still gets every event (at least once); a receiver that
// never answers does not slow a pull; a receiver that never comes back
// leaves its events in the dead letters `ferry webhooks --dead-letters`
// prints.
import { execFile } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { CLI, NODE_FLAGS, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { blob, image, OCI_MANIFEST, pushBlob, pushImage, type Image } from '../helpers/images.ts'
import { freePort, scratchDir, startProc, type Proc } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

const run = promisify(execFile)
const SECRET = `hook-${randomBytes(12).toString('hex')}`
const PASSWORD = 'ci-Webhooks-Passw0rd'
const CI = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`
const dir = scratchDir('ferry-webhooks-')

interface Received { headers: IncomingMessage['headers'], body: string, event: { specversion: string, id: string, type: string, source: string, subject?: string, time: string, data: Record<string, unknown> } }
let mode: 'ok' | 'down' | 'hang' = 'ok'
const received: Received[] = []
let attempts = 0
const hanging: ServerResponse[] = []
let receiver: Server
let receiverUrl: string
/** Takes requests and never answers them: a hook in front of it fills its queue. */
let stuck: Server
let upstream: Registry
let ferry: Ferry
let peer: Ferry
let replicator: Proc | undefined
const REPLICATION_SECRET = `repl-${randomBytes(12).toString('hex')}`
let img: Image

t.before(async () => {
  registerSecret(SECRET, PASSWORD, REPLICATION_SECRET)
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      attempts++
      if (mode === 'down') { res.writeHead(503).end(); return }
      if (mode === 'hang') { hanging.push(res); return }
      const body = Buffer.concat(chunks).toString()
      received.push({ headers: req.headers, body, event: JSON.parse(body) as Received['event'] })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/ferry`
  stuck = createServer(() => {})
  await new Promise<void>(resolve => stuck.listen(0, '127.0.0.1', resolve))
  upstream = await startRegistry()
  img = await image()
  await pushImage(upstream.url, 'team/app', 'v1', img)
  writeFileSync(join(dir, 'htpasswd'), `ci:${bcrypt.hashSync(PASSWORD, 8)}\n`)
  // another region that takes this one's pushes
  peer = await startFerry({ env: { FERRY_REPLICATION_SECRET: REPLICATION_SECRET }, config: { region: 'dr', upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }], hosted: [{ prefix: 'acme/' }], replication: { secretEnv: 'FERRY_REPLICATION_SECRET' } } })
  ferry = await startFerry({
    env: { HOOK_SECRET: SECRET },
    config: {
      // the replicator reaches this region's edge at its listen address
      listen: `127.0.0.1:${await freePort()}`,
      replication: {
        peers: [
          { name: 'dr', url: peer.url, credentials: { username: 'replicator', passwordEnv: 'PEER_SECRET' } },
          // a peer that refuses this region's pushes (a secret it does not know)
          { name: 'refusing', url: peer.url, credentials: { username: 'replicator', passwordEnv: 'WRONG_SECRET' } },
        ],
        attempts: 2,
      },
      upstreams: [{ name: 'up', url: upstream.url, default: true, tagTTL: '1s' }],
      hosted: [{ prefix: 'acme/', quota: '64KiB' }],
      auth: { htpasswd: join(dir, 'htpasswd'), access: [{ repositories: ['acme/**'], allow: { 'user:ci': 'admin' } }, { repositories: ['**'], allow: { anonymous: 'reader' } }] },
      webhooks: [
        { name: 'ops', url: receiverUrl, events: ['push', 'pull', 'delete', 'upstream.down', 'quota.exceeded', 'replicated', 'replication.failed'], secretEnv: 'HOOK_SECRET', attempts: 6, timeout: '2s' },
        // a receiver that is never there
        { name: 'gone', url: `http://127.0.0.1:${await freePort()}/`, events: ['push'], attempts: 2, timeout: '1s' },
        // a receiver that never answers, and room for two events
        { name: 'full', url: `http://127.0.0.1:${(stuck.address() as { port: number }).port}/`, events: ['pull'], attempts: 1, timeout: '60s', maxQueued: 2 },
      ],
    },
  })
})
t.teardown(async () => {
  for (const r of hanging) r.destroy()
  await replicator?.stop()
  await ferry?.stop()
  await peer?.stop()
  await upstream?.stop()
  receiver?.closeAllConnections()
  await new Promise(resolve => receiver?.close(resolve))
  stuck?.closeAllConnections()
  await new Promise(resolve => stuck?.close(resolve))
})

async function waitFor (what: (r: Received) => boolean, ms = 20_000): Promise<Received | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const found = received.find(what)
    if (found !== undefined || Date.now() > deadline) return found
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

t.test('a pull: a signed CloudEvent', async t => {
  const res = await get(`${ferry.url}/v2/team/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(res.status, 200)
  const got = await waitFor(r => r.event.type === 'io.ferry.pull')
  t.ok(got, 'the receiver got io.ferry.pull')
  t.equal(got!.event.specversion, '1.0')
  t.equal(got!.event.subject, 'team/app:v1')
  t.equal(got!.event.data.digest, img.manifest.digest)
  t.equal(got!.event.data.who, 'anonymous')
  t.match(got!.event.source, /^ferry\//)
  t.match(got!.headers['content-type'], /application\/cloudevents\+json/)
  const expected = `sha256=${createHmac('sha256', SECRET).update(got!.body).digest('hex')}`
  t.equal(got!.headers['x-ferry-signature'], expected, 'signed with the hook\'s secret over the exact body')
  t.notMatch(JSON.stringify(got!.headers), SECRET, 'the secret itself is never sent')
})

t.test('a receiver that is down for a while, then returns, gets the event', async t => {
  mode = 'down'
  const before = attempts
  const pushed = await image()
  await pushImage(ferry.url, 'acme/app', 'v1', pushed, CI)
  // it is refused at least twice, then the receiver returns
  for (let i = 0; i < 200 && attempts - before < 2; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(attempts - before >= 2, `refused ${attempts - before} times while down`)
  mode = 'ok'
  const got = await waitFor(r => r.event.type === 'io.ferry.push' && r.event.subject === 'acme/app:v1')
  t.ok(got, 'delivered once the receiver is back')
  t.equal(got?.event.data.digest, pushed.manifest.digest)
  t.equal(got?.event.data.who, 'ci', 'who pushed')
})

t.test('a receiver that never answers does not slow a pull', async t => {
  mode = 'hang'
  const started = attempts
  const pulls = await Promise.all(Array.from({ length: 5 }, async () => await get(`${ferry.url}/v2/team/app/blobs/${img.layers[0]!.digest}`)))
  const manifest = await get(`${ferry.url}/v2/team/app/manifests/${img.manifest.digest}`, { accept: OCI_MANIFEST })
  t.ok(pulls.every(p => p.status === 200) && manifest.status === 200, 'the pulls are answered while the receiver holds its requests')
  for (let i = 0; i < 100 && attempts === started; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(attempts > started, 'a delivery is waiting on the receiver')
  mode = 'ok'
  for (const r of hanging.splice(0)) r.destroy()
  t.ok(await waitFor(r => r.event.type === 'io.ferry.pull' && r.event.subject === `team/app@${img.manifest.digest}`), 'and the event arrives after the receiver recovers')
})

t.test('a push over quota, and a delete', async t => {
  const big = blob('application/octet-stream', randomBytes(100 * 1024))
  await t.rejects(pushBlob(ferry.url, 'acme/big', big, CI), /403/, 'past the 64 KiB quota: refused')
  const over = await waitFor(r => r.event.type === 'io.ferry.quota.exceeded')
  t.ok(over, 'quota.exceeded')
  t.equal(over?.event.data.namespace, 'acme/')
  t.equal(over?.event.data.quota, 64 * 1024)
  const del = await get(`${ferry.url}/v2/acme/app/manifests/v1`, { authorization: CI }, 'DELETE')
  t.equal(del.status, 202)
  const deleted = await waitFor(r => r.event.type === 'io.ferry.delete')
  t.equal(deleted?.event.subject, 'acme/app:v1')
  t.equal(deleted?.event.data.who, 'ci')
})

t.test('an upstream going down: one event, with what went wrong', async t => {
  await upstream.stop()
  await new Promise(resolve => setTimeout(resolve, 1100)) // past the tag TTL: ferry asks the upstream
  for (let i = 0; i < 3; i++) await get(`${ferry.url}/v2/team/app/manifests/v1`, { accept: OCI_MANIFEST })
  const down = await waitFor(r => r.event.type === 'io.ferry.upstream.down')
  t.ok(down, 'upstream.down')
  t.equal(down?.event.data.upstream, 'up')
  t.ok(typeof down?.event.data.error === 'string' && (down.event.data.error as string).length > 0, `with the error (${String(down?.event.data.error)})`)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(received.filter(r => r.event.type === 'io.ferry.upstream.down').length, 1, 'once, not per failed request')
})

t.test('events no receiver took are in the dead letters', async t => {
  let letters: { hook: string, event: { type: string, subject: string }, error: string }[] = []
  for (let i = 0; i < 100; i++) {
    const { stdout } = await run(process.execPath, [CLI, 'webhooks', '--config', ferry.configPath, '--dead-letters'])
    letters = stdout.trim().split('\n').filter(Boolean).map(l => JSON.parse(l) as typeof letters[number])
    if (letters.length > 0) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const push = letters.find(l => l.hook === 'gone' && l.event.type === 'io.ferry.push')
  t.ok(push, 'the push event for the hook that is never there')
  t.equal(push?.event.subject, 'acme/app:v1')
  t.match(push?.error, /ECONNREFUSED|connect|refused/i, 'with why')
  t.notOk(letters.some(l => l.hook === 'ops'), 'nothing for the hook whose receiver came back')
})

t.test('a hook whose queue is full: new events go to the dead letters, said once in the log, and pulls go on', async t => {
  const pulls = await Promise.all(Array.from({ length: 6 }, async () => await get(`${ferry.url}/v2/team/app/manifests/${img.manifest.digest}`, { accept: OCI_MANIFEST })))
  t.ok(pulls.every(p => p.status === 200), 'every pull answered')
  let full: { hook: string, error: string }[] = []
  for (let i = 0; i < 100 && full.length < 4; i++) {
    const { stdout } = await run(process.execPath, [CLI, 'webhooks', '--config', ferry.configPath, '--dead-letters'])
    full = stdout.trim().split('\n').filter(Boolean).map(l => JSON.parse(l) as typeof full[number]).filter(l => l.hook === 'full')
    if (full.length < 4) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(full.length >= 4, `the pulls past the two held are dead letters (${full.length})`)
  t.ok(full.every(l => /queue is full/.test(l.error)), 'saying the queue is full')
  const said = ferry.logs().filter(l => l.msg === 'webhook queue full (the receiver is down or slower than the events); new events go to the dead letters' && l.hook === 'full')
  t.equal(said.length, 1, 'said once, not per event')
  t.equal(ferry.logs().filter(l => l.msg === 'webhook event not delivered; kept in the dead letters' && l.hook === 'full').length, 0, 'no line per buried event')
})

t.test('the replicator tells the hooks what it delivered, and what a peer refused', async t => {
  replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', ferry.configPath], { env: { ...process.env, HOOK_SECRET: SECRET, PEER_SECRET: REPLICATION_SECRET, WRONG_SECRET: 'not-the-secret' } })
  const delivered = await waitFor(r => r.event.type === 'io.ferry.replicated' && r.event.data.peer === 'dr' && r.event.data.kind === 'manifest', 30_000)
  t.ok(delivered, 'replicated: the pushed manifest reached the peer region')
  t.equal(delivered?.event.subject, 'acme/app')
  t.match(delivered?.event.source, /\/replicator$/, 'from the replicator')
  t.equal(delivered?.headers['x-ferry-signature'], `sha256=${createHmac('sha256', SECRET).update(delivered!.body).digest('hex')}`, 'signed')
  const refused = await waitFor(r => r.event.type === 'io.ferry.replication.failed' && r.event.data.peer === 'refusing', 30_000)
  t.ok(refused, 'replication.failed: the peer that refused')
  t.match(String(refused?.event.data.error), /401|403|denied|unauthorized/i, 'with its answer')
})
