// A full disk is this proxy's problem, not the upstream's: the client is
// told at once (507 with an OCI body), the upstream is asked once, nothing
// wrong is cached, cached blobs are evicted to make room (never pushed
// ones), and the next pull works. The data folder is a small tmpfs mounted
// for the test (as root, which the test setup is).
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statfsSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { blob, pushBlob, type Blob } from '../helpers/images.ts'
import { pullBlob } from '../helpers/pull.ts'
import { eventually, scratchDir } from '../helpers/procs.ts'
import { startRegistry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

const MiB = 1024 * 1024
const PASSWORD = 'disk-Full-pusher-1'

if (process.getuid?.() !== 0) throw new Error('disk-full.test.ts mounts a tmpfs: run the tests as root (CI does)')

const free = (dir: string): number => { const s = statfsSync(dir); return s.bavail * s.bsize }
const stored = (data: string, digest: string): string => join(data, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7))

/** Every file in the store hashes to its name. */
function storeVerifies (data: string): { files: number, wrong: string[] } {
  const root = join(data, 'blobs', 'sha256')
  const wrong: string[] = []
  let files = 0
  if (!existsSync(root)) return { files, wrong }
  for (const p of readdirSync(root)) {
    for (const f of readdirSync(join(root, p))) {
      files++
      if (createHash('sha256').update(readFileSync(join(root, p, f))).digest('hex') !== f) wrong.push(f)
    }
  }
  return { files, wrong }
}

t.test('the disk fills up: 507 at once, one upstream request, eviction makes room, pushed blobs stay', async t => {
  const data = scratchDir('ferry-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=72m', 'tmpfs', data])
  t.teardown(() => { execFileSync('umount', ['-l', data]) })
  registerSecret(PASSWORD)

  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const old: Blob[] = []
  for (let i = 0; i < 10; i++) {
    const b = blob('application/octet-stream', randomBytes(4 * MiB))
    await pushBlob(upstream.url, 'lib/old', b)
    old.push(b)
  }
  const big = [0, 1, 2].map(() => blob('application/octet-stream', randomBytes(8 * MiB)))
  for (const b of big) await pushBlob(upstream.url, 'lib/big', b)

  const ferry = await startFerry({
    data,
    config: {
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      // more than the disk holds: the operator's mistake this test is about
      cache: { maxBytes: '10GiB' },
      hosted: [{ prefix: 'acme/' }],
      auth: { users: { ci: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['acme/**'], allow: { 'user:ci': 'admin' } }, { repositories: ['lib/**'], allow: { anonymous: 'reader' } }] },
    },
  })
  t.teardown(() => ferry.stop())
  const ci = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`

  // pushed first, so the oldest in the cache's order: eviction must pass it by
  const pushed = blob('application/octet-stream', randomBytes(2 * MiB))
  await pushBlob(ferry.url, 'acme/app', pushed, ci)
  for (const b of old) t.equal((await pullBlob(`${ferry.url}/v2/lib/old/blobs/${b.digest}`)).digest, b.digest)
  t.ok(await eventually(() => old.every(b => existsSync(stored(data, b.digest)))), 'the old blobs are cached')

  // leave 3 MiB
  writeFileSync(join(data, 'filler'), Buffer.alloc(free(data) - 3 * MiB))
  const url = (b: Blob): string => `${ferry.url}/v2/lib/big/blobs/${b.digest}`
  const refused = await get(url(big[0]!))
  t.equal(refused.status, 507, 'the client is told the disk is full, before any byte')
  t.equal(ociError(refused)?.code, 'UNAVAILABLE')
  t.match(ociError(refused)?.message, /no space left/)
  t.equal(refused.headers['retry-after'], '5')
  // the registry writes its access log line after it answered
  await eventually(() => upstream.count('GET', `/blobs/${big[0]!.digest}`) > 0)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(upstream.count('GET', `/blobs/${big[0]!.digest}`), 1, 'the upstream was asked once, not retried')
  const lines = await ferry.waitForLogs(l => /the disk is full/.test(String(l.msg)), 1)
  t.equal(lines.length, 1, 'one log line says so')
  t.equal(ferry.logs().filter(l => /resuming/.test(String(l.msg))).length, 0, 'no resume was tried')
  const evicted = await ferry.waitForLogs(l => l.msg === 'evicted least recently used blobs', 1)
  t.equal(evicted.length, 1, 'eviction ran although the cache is far under its limit')
  t.ok((evicted[0]!.bytes as number) >= 16 * MiB, 'it freed room for the blob and more')
  const metrics = (await get(`${ferry.url}/metrics`)).body.toString()
  t.match(metrics, /ferry_disk_full_total\{write="fill"\} 1/)
  t.match(metrics, /ferry_fill_failures_total\{reason="no_space"\} 1/)
  t.ok(existsSync(stored(data, pushed.digest)), 'the pushed blob was not evicted')
  t.equal((await pullBlob(`${ferry.url}/v2/acme/app/blobs/${pushed.digest}`, { headers: { authorization: ci } })).digest, pushed.digest)
  t.notOk(existsSync(stored(data, old[0]!.digest)), 'the oldest cached blob went')
  t.ok(existsSync(stored(data, old[9]!.digest)), 'the newest cached blob stayed')

  const again = await pullBlob(url(big[0]!))
  t.equal(again.digest, big[0]!.digest, 'with room made, the same pull works')
  t.ok(again.complete)

  // room for one 8 MiB blob, two pulled at once: the disk fills during the transfer
  rmSync(join(data, 'filler'))
  writeFileSync(join(data, 'filler'), Buffer.alloc(free(data) - 12 * MiB))
  const [a, b] = await Promise.all([pullBlob(url(big[1]!)), pullBlob(url(big[2]!))])
  await eventually(() => big.slice(1).every(x => upstream.count('GET', `/blobs/${x.digest}`) > 0))
  await new Promise(resolve => setTimeout(resolve, 300))
  for (const [i, p] of [a, b].entries()) {
    const want = big[i + 1]!
    if (p.complete && p.status === 200) t.equal(p.digest, want.digest, 'a transfer that completes has the right bytes')
    else t.ok(p.bytes < want.bytes.length, 'a failed one never gets the whole length')
    t.equal(upstream.count('GET', `/blobs/${want.digest}`), 1, 'each asked of the upstream once')
  }
  t.ok(!(a.complete && a.status === 200) || !(b.complete && b.status === 200), 'at least one ran out of disk')
  t.equal(ferry.logs().filter(l => /resuming/.test(String(l.msg))).length, 0, 'still no resume tried')
  const check = storeVerifies(data)
  t.same(check.wrong, [], `no cached blob with a wrong digest (${check.files} files checked)`)
  t.equal(readdirSync(join(data, 'tmp')).length, 0, 'no staging file left behind')

  // an upload that meets a full disk: 507, what arrived is kept, finished once there is room
  rmSync(join(data, 'filler'))
  writeFileSync(join(data, 'filler'), Buffer.alloc(free(data) - 1 * MiB))
  const bigPush = blob('application/octet-stream', randomBytes(4 * MiB))
  const start = await get(`${ferry.url}/v2/acme/app/blobs/uploads/`, { authorization: ci }, 'POST')
  t.equal(start.status, 202)
  const location = new URL(start.headers.location as string, ferry.url).toString()
  const patch = await fetch(location, { method: 'PATCH', headers: { authorization: ci, 'content-type': 'application/octet-stream' }, body: bigPush.bytes })
  const patchBody = await patch.json() as { errors: { code: string }[] }
  t.equal(patch.status, 507, 'the upload is refused with 507')
  t.equal(patchBody.errors[0]?.code, 'UNAVAILABLE')
  t.equal(ferry.proc.child.exitCode, null, 'the proxy still runs')
  rmSync(join(data, 'filler'))
  const status = await get(location, { authorization: ci })
  t.equal(status.status, 204, 'the session lives on')
  const held = Number(String(status.headers.range).split('-')[1]) + 1
  t.ok(held > 0 && held < bigPush.bytes.length, `part of it is held (${held} bytes)`)
  const rest = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${bigPush.digest}`, { method: 'PUT', headers: { authorization: ci, 'content-type': 'application/octet-stream', 'content-range': `${held}-${bigPush.bytes.length - 1}` }, body: bigPush.bytes.subarray(held) })
  t.equal(rest.status, 201, 'the pusher finishes from where it was')
  t.equal((await pullBlob(`${ferry.url}/v2/acme/app/blobs/${bigPush.digest}`, { headers: { authorization: ci } })).digest, bigPush.digest)
})
