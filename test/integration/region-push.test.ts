// Pushing to a region of two proxies behind a load balancer (nginx, round
// robin per request), with Redis and an S3 store: an upload session lives on
// the proxy that started it, and a PATCH or PUT that lands on the other proxy
// is relayed there. docker push, skopeo copy and raw chunked uploads; a
// session whose proxy is gone is unknown, and the client starts again.
// Garbage collection runs on one proxy at a time.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { execFile } from 'node:child_process'

import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { create as createTar } from 'tar'
import { startBalancer, type Balancer } from '../helpers/balancer.ts'
import { startDockerd } from '../helpers/dockerd.ts'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { blob, digestOf, image, pushImage, type Image } from '../helpers/images.ts'
import { freePort, scratchDir } from '../helpers/procs.ts'
import { startRedis, type RedisServer } from '../helpers/redis.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { startS3Server, type S3Server } from '../helpers/s3-server.ts'
import { registerSecret } from '../helpers/secrets.ts'

const run = promisify(execFile)
const PASSWORD = 'region-Push-Ci-1'
const AUTH = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`
const dir = scratchDir('ferry-region-push-')
let source: Registry
let redis: RedisServer
let s3: S3Server
let lb: Balancer
const proxies: Ferry[] = []

t.before(async () => {
  registerSecret(PASSWORD)
  source = await startRegistry()
  redis = await startRedis()
  s3 = await startS3Server(join(dir, 's3'))
  const users = { ci: bcrypt.hashSync(PASSWORD, 6) }
  for (const name of ['one', 'two']) {
    const data = mkdtempSync(join(dir, `${name}-`))
    const port = await freePort()
    proxies.push(await startFerry({
      data,
      config: {
        region: 'push', listen: `127.0.0.1:${port}`, data,
        peer: { advertise: `http://127.0.0.1:${port}` },
        state: { type: 'redis', url: redis.url, keyPrefix: 'ferry:push:' },
        store: { type: 's3', bucket: s3.bucket, endpoint: s3.endpoint, region: 'us-east-1', prefix: 'push/' },
        l1: { path: join(data, 'l1'), maxBytes: '1GiB' },
        upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', prefix: 'nowhere.test', default: true }],
        hosted: [{ prefix: 'acme/' }],
        gc: { interval: '1s', grace: '1h' },
        auth: { users, access: [{ repositories: ['acme/**'], allow: { 'user:ci': 'admin' } }] },
      },
      env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' },
    }))
  }
  lb = await startBalancer(proxies.map(p => p.url))
})
t.teardown(async () => {
  await lb?.stop()
  for (const p of proxies) await p.stop()
  await s3?.close()
  await redis?.stop()
  await source?.stop()
})

async function patch (base: string, location: string, start: number, bytes: Buffer): Promise<Response> {
  const res = await fetch(`${base}${location}`, { method: 'PATCH', headers: { authorization: AUTH, 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + bytes.length - 1}` }, body: bytes })
  await res.arrayBuffer()
  return res
}

t.test('a chunked upload started on one proxy goes on and completes on the other', async t => {
  const [one, two] = proxies as [Ferry, Ferry]
  const b = blob('application/octet-stream', randomBytes(3 * 1024 * 1024 + 17))
  const start = await get(`${one.url}/v2/acme/raw/blobs/uploads/`, { authorization: AUTH }, 'POST')
  t.equal(start.status, 202)
  const location = start.header('location')!
  const first = await patch(two.url, location, 0, b.bytes.subarray(0, 1024 * 1024))
  t.equal(first.status, 202, 'the first chunk, sent to the other proxy')
  t.equal(first.headers.get('range'), `0-${1024 * 1024 - 1}`, 'reports the offset the owner holds')
  const status = await get(`${two.url}${location}`, { authorization: AUTH })
  t.equal(status.status, 204, 'the status, asked of the other proxy')
  t.equal(status.header('range'), `0-${1024 * 1024 - 1}`)
  const second = await patch(one.url, location, 1024 * 1024, b.bytes.subarray(1024 * 1024))
  t.equal(second.status, 202, 'the rest, sent to the owner')
  const put = await get(`${two.url}${location}?digest=${b.digest}`, { authorization: AUTH }, 'PUT')
  t.equal(put.status, 201, 'completed through the other proxy')
  t.equal(put.header('docker-content-digest'), b.digest)
  for (const p of proxies) {
    const r = await get(`${p.url}/v2/acme/raw/blobs/${b.digest}`, { authorization: AUTH })
    t.equal(digestOf(r.body), b.digest, `the blob reads whole from ${p === one ? 'the owner' : 'the other proxy'}`)
  }
})

t.test('a relayed request is judged again where it lands: another repository or no credentials get nothing', async t => {
  const [one, two] = proxies as [Ferry, Ferry]
  const start = await get(`${one.url}/v2/acme/judged/blobs/uploads/`, { authorization: AUTH }, 'POST')
  const session = start.header('location')!.split('/').pop()!
  const elsewhere = await patch(two.url, `/v2/acme/other/blobs/uploads/${session}`, 0, Buffer.from('x'))
  t.equal(elsewhere.status, 404, 'the session under another repository is unknown')
  const anonymous = await fetch(`${two.url}/v2/acme/judged/blobs/uploads/${session}`, { method: 'PATCH', headers: { 'content-range': '0-0' }, body: 'x' })
  await anonymous.arrayBuffer()
  t.equal(anonymous.status, 401, 'without credentials, refused before any relay')
  t.equal((await get(`${one.url}/v2/acme/judged/blobs/uploads/${session}`, { authorization: AUTH })).header('range'), '0-0', 'the owner holds nothing from either')
})

t.test('docker push and skopeo copy through the load balancer, pulled back through it', async t => {
  requireBinary('skopeo', 'skopeo')
  const img: Image = await image({ layerCount: 3, files: { 'big.bin': randomBytes(4 * 1024 * 1024) } })
  await pushImage(source.url, 'src/app', 'v1', img)
  for (let i = 0; i < 3; i++) {
    await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `ci:${PASSWORD}`,
      `docker://${source.host}/src/app:v1`, `docker://${lb.host}/acme/skopeo${i}:v1`])
    const m = await get(`${lb.url}/v2/acme/skopeo${i}/manifests/v1`, { authorization: AUTH, accept: img.manifest.mediaType })
    t.equal(m.header('docker-content-digest'), img.manifest.digest, `skopeo push ${i + 1}`)
  }

  const docker = await startDockerd([lb.host])
  t.teardown(() => docker.stop())
  await docker.docker(['login', lb.host, '-u', 'ci', '--password-stdin'], PASSWORD)
  const root = mkdtempSync(join(dir, 'rootfs-'))
  writeFileSync(join(root, 'payload.bin'), randomBytes(5 * 1024 * 1024))
  const tarball = join(dir, 'rootfs.tar')
  await createTar({ cwd: root, file: tarball, portable: true }, ['payload.bin'])
  for (let i = 0; i < 3; i++) {
    const ref = `${lb.host}/acme/docker${i}:v1`
    await docker.docker(['import', '--message', String(i), tarball, ref])
    const pushed = await docker.docker(['push', ref])
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed)?.[1]
    t.ok(digest, `docker push ${i + 1}`)
    await docker.docker(['rmi', ref])
    await docker.docker(['pull', ref])
    const images = await docker.docker(['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}'])
    t.match(images, `${ref} ${digest}`, 'pulled back through the balancer')
  }
})

t.test('garbage collection runs on one proxy of the region at a time (the gc lease in Redis)', async t => {
  const runs = (p: Ferry): number => p.logs().filter(l => l.msg === 'garbage collected').length
  const before = proxies.map(runs)
  const started = Date.now()
  await new Promise(resolve => setTimeout(resolve, 5000))
  const seconds = (Date.now() - started) / 1000
  const each = proxies.map((p, i) => runs(p) - before[i]!)
  const n = each[0]! + each[1]!
  t.ok(n >= 2 && n <= Math.ceil(seconds) + 1, `${n} collections in ${seconds.toFixed(1)} s over two proxies that each try every second (${each.join(' + ')})`)
})

t.test('a session whose proxy is gone is unknown: the client starts again', async t => {
  const [one, two] = proxies as [Ferry, Ferry]
  const start = await get(`${two.url}/v2/acme/lost/blobs/uploads/`, { authorization: AUTH }, 'POST')
  const location = start.header('location')!
  await two.stop()
  const res = await patch(one.url, location, 0, Buffer.from('after the owner died'))
  t.equal(res.status, 404)
  const body = await get(`${one.url}${location}`, { authorization: AUTH })
  t.equal(ociError(body)?.code, 'BLOB_UPLOAD_UNKNOWN')
})
