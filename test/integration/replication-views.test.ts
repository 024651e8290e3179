// The replicator's operator views against a Redis region, with Redis up and
// down (they answer, or exit 1 saying why; they never hang), and an event
// that cannot be delivered because this region's store lost its content:
// it ends in the dead letters with its reason, lag reaches 0, and
// --retry-dead delivers it once the content is back.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { stringify } from 'yaml'
import { CLI, NODE_FLAGS, startFerry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, pushImage, pushManifest, OCI_MANIFEST } from '../helpers/images.ts'
import { eventually, freePort, scratchDir, startProc } from '../helpers/procs.ts'
import { startRedis } from '../helpers/redis.ts'
import { startRegistry } from '../helpers/registry.ts'

const execFileP = promisify(execFile)

interface Ran { code: number, stdout: string, stderr: string }
/** The CLI, killed if it takes longer than `timeoutMs` (a hang is a failure, not a stuck suite). */
async function cli (args: string[], timeoutMs = 20_000): Promise<Ran & { killed: boolean }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], { timeout: timeoutMs })
    return { code: 0, stdout, stderr, killed: false }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string, killed?: boolean }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '', killed: e.killed === true }
  }
}

t.test('--status, --dead-letters and --retry-dead with Redis state: answers when it is up, exit 1 with the reason when it is down', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const peer = await startRegistry()
  t.teardown(() => peer.stop())
  const dir = scratchDir('ferry-views-')
  const config = join(dir, 'region.yaml')
  writeFileSync(config, stringify({
    region: 'a', listen: '127.0.0.1:0', data: join(dir, 'data'),
    upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }],
    state: { type: 'redis', url: redis.url },
    replication: { peers: [{ name: 'c', url: peer.url }] },
  }))

  const status = await cli(['replicate', '--config', config, '--status'])
  t.equal(status.code, 0, `--status answers (${status.stderr.trim()})`)
  const line = JSON.parse(status.stdout.trim()) as { peer: string, eventsBehind: number, deadLetters: number }
  t.same([line.peer, line.eventsBehind, line.deadLetters], ['c', 0, 0])
  const dead = await cli(['replicate', '--config', config, '--dead-letters'])
  t.equal(dead.code, 0, '--dead-letters answers')
  t.equal(dead.stdout.trim(), '', 'none')
  const retry = await cli(['replicate', '--config', config, '--retry-dead'])
  t.equal(retry.code, 0, '--retry-dead answers')
  t.same(JSON.parse(retry.stdout), { retried: 0, delivered: 0 })

  const replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', config])
  t.teardown(() => replicator.stop())
  await replicator.waitFor(/"msg":"replicating"/)
  await new Promise(resolve => setTimeout(resolve, 500))
  t.same(replicator.lines.filter(l => /writeable|offline queue/i.test(l)), [], 'the running replicator starts without a Redis error')
  const second = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', config])
  t.teardown(() => second.stop())
  await second.waitFor(/standing by/)
  t.notOk(second.lines.some(l => l.includes('"msg":"replicating"')), 'a second replicator of the region stands by (the lease in Redis)')
  await replicator.stop()
  await second.waitFor(/"msg":"replicating"/, 20_000)
  t.pass('and takes over once the first has stopped')
  await second.stop()

  await redis.stop()
  for (const view of ['--status', '--dead-letters', '--retry-dead']) {
    const r = await cli(['replicate', '--config', config, view])
    t.notOk(r.killed, `${view} did not hang`)
    t.equal(r.code, 1, `${view} exits 1`)
    t.match(r.stderr, /ferry replicate: the region state could not reach Redis at redis:\/\/127\.0\.0\.1:\d+\/? within 5 s/, `${view} says why`)
  }
})

t.test('a manifest this region\'s store lost: dead-lettered with the reason, lag reaches 0, --retry-dead delivers it once it is back', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const peer = await startRegistry()
  t.teardown(() => peer.stop())
  const img = await image({ files: { 'a.txt': 'lost and found\n' } })
  await pushImage(upstream.url, 'lib/app', 'v1', img)
  const config = {
    region: 'a', listen: `127.0.0.1:${await freePort()}`,
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    replication: { peers: [{ name: 'c', url: peer.url }], attempts: 2 },
  }
  let a = await startFerry({ config })
  t.teardown(() => a.stop())
  const pulled = await get(`${a.url}/v2/lib/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(pulled.status, 200)
  const digest = img.manifest.digest
  const file = join(a.data, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7))
  t.ok(await eventually(() => existsSync(file)), 'the manifest is stored')
  // the store loses the manifest's bytes; the proxy still holds them in memory, so its edge answers without storing them
  rmSync(file)

  const replicator = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', a.configPath])
  t.teardown(() => replicator.stop())
  let s = { eventsBehind: -1, deadLetters: 0 }
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    s = JSON.parse((await cli(['replicate', '--config', a.configPath, '--status'])).stdout.trim()) as typeof s
    if (s.eventsBehind === 0) break
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  t.equal(s.eventsBehind, 0, 'the replicator moved past it: lag reaches 0')
  t.ok(s.deadLetters > 0, 'into the dead letters')
  const letters = (await cli(['replicate', '--config', a.configPath, '--dead-letters'])).stdout.trim().split('\n').map(l => JSON.parse(l) as { event: { kind: string, digest: string }, error: string })
  t.ok(letters.length > 0 && letters.every(l => l.event.digest === digest), 'the events of that manifest')
  t.match(letters[0]!.error, /not in this region's store/, 'with the reason')
  t.equal((await get(`${peer.url}/v2/lib/app/manifests/v1`, { accept: OCI_MANIFEST })).status, 404, 'the peer has nothing half-sent')
  await replicator.stop()

  // a restart forgets the copy in memory: the edge fetches the manifest again and stores it
  await a.stop()
  a = await startFerry({ config, data: a.data })
  const retry = await cli(['replicate', '--config', a.configPath, '--retry-dead'])
  t.equal(retry.code, 0, `--retry-dead delivers (${retry.stdout.trim()} ${retry.stderr.trim()})`)
  const r = JSON.parse(retry.stdout) as { retried: number, delivered: number }
  t.ok(r.retried > 0 && r.delivered === r.retried)
  const there = await get(`${peer.url}/v2/lib/app/manifests/v1`, { accept: OCI_MANIFEST })
  t.equal(there.status, 200, 'the peer has the tag now')
  t.equal(there.headers['docker-content-digest'], digest)
  t.equal((await cli(['replicate', '--config', a.configPath, '--dead-letters'])).stdout.trim(), '', 'no dead letters left')
})

t.test('one replicator per region, embedded: a second stands by and takes over from a killed one; the passed events are freed on disk', async t => {
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const peer = await startRegistry()
  t.teardown(() => peer.stop())
  const img = await image({ files: { 'b.txt': 'many tags\n' } })
  await pushImage(upstream.url, 'lib/tags', 'v0', img)
  const tags = Array.from({ length: 80 }, (_, i) => `t${i}`)
  for (const tag of tags) await pushManifest(upstream.url, 'lib/tags', tag, img.manifest)
  const config = {
    region: 'a', listen: `127.0.0.1:${await freePort()}`,
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    replication: { peers: [{ name: 'c', url: peer.url }] },
  }
  const a = await startFerry({ config })
  t.teardown(() => a.stop())
  for (const tag of tags) t.equal((await get(`${a.url}/v2/lib/tags/manifests/${tag}`, { accept: OCI_MANIFEST })).status, 200)
  const events = join(a.data, 'state', 'events.jsonl')
  t.ok(await eventually(() => existsSync(events) && readFileSync(events, 'utf8').includes('"tag":"t79"')), 'every tag recorded')

  const first = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', a.configPath])
  t.teardown(() => first.stop())
  await first.waitFor(/"msg":"replicating"/)
  const second = startProc(process.execPath, [...NODE_FLAGS, CLI, 'replicate', '--config', a.configPath])
  t.teardown(() => second.stop())
  await second.waitFor(/standing by/)
  const status = async (): Promise<{ eventsBehind: number, deadLetters: number, position: string }> => JSON.parse((await cli(['replicate', '--config', a.configPath, '--status'])).stdout.trim()) as { eventsBehind: number, deadLetters: number, position: string }
  let s = await status()
  for (let i = 0; i < 120 && s.eventsBehind > 0; i++) { await new Promise(resolve => setTimeout(resolve, 250)); s = await status() }
  t.equal(s.eventsBehind, 0, 'the first caught up')
  t.equal(s.deadLetters, 0)
  t.equal((await get(`${peer.url}/v2/lib/tags/manifests/t79`, { accept: OCI_MANIFEST })).status, 200, 'the peer has the last tag')

  // compaction runs between lease renewals (every 5 s with the embedded state)
  const compacted = join(a.data, 'state', 'events.compacted')
  t.ok(await eventually(() => existsSync(compacted) && Number(readFileSync(compacted, 'utf8')) === Number(s.position), 15_000), `compacted up to the peer's position (${s.position})`)
  const st = statSync(events)
  t.ok(st.blocks * 512 < st.size, `the passed part takes no disk (${st.blocks * 512} bytes allocated of ${st.size})`)
  t.equal((await status()).eventsBehind, 0, 'the status reads the kept part')

  await first.stop('SIGKILL')
  await second.waitFor(/"msg":"replicating"/, 20_000)
  t.notOk(first.lines.some(l => /lease lost/.test(l)), 'the first held its lease until it was killed')
  await pushManifest(upstream.url, 'lib/tags', 'after', img.manifest)
  t.equal((await get(`${a.url}/v2/lib/tags/manifests/after`, { accept: OCI_MANIFEST })).status, 200)
  let there = 0
  for (let i = 0; i < 80 && there !== 200; i++) { await new Promise(resolve => setTimeout(resolve, 250)); there = (await get(`${peer.url}/v2/lib/tags/manifests/after`, { accept: OCI_MANIFEST })).status }
  t.equal(there, 200, 'the second, having taken over, delivers what comes after the compacted part')
})
