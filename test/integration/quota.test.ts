// Quotas per hosted namespace: a push that would pass the quota is refused
// with 403 DENIED naming usage and limit (whole, chunked, by a real client),
// leaves nothing behind, and a blob the namespace holds already counts once.
// Garbage collection gives the room back.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { blob, image, pushBlob, pushImage, type Image } from '../helpers/images.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

const run = promisify(execFile)
const PASSWORD = 'quota-Writer-Passw0rd'
const AUTH = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`
const QUOTA = 256 * 1024

let upstream: Registry
let ferry: Ferry
let small: Image
let big: Image

const inStore = (f: Ferry, digest: string): boolean => existsSync(join(f.data, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)))
const uploadsLeft = (f: Ferry): string[] => existsSync(join(f.data, 'uploads')) ? readdirSync(join(f.data, 'uploads')) : []

async function usage (f: Ferry): Promise<number> {
  const text = (await get(`${f.url}/metrics`)).body.toString()
  const m = /^ferry_namespace_usage_bytes\{namespace="team\/"\} (\d+)$/m.exec(text)
  return m === null ? -1 : Number(m[1])
}

t.before(async () => {
  registerSecret(PASSWORD)
  upstream = await startRegistry()
  // incompressible bytes, so the layer's size is what it says
  small = await image({ files: { 'small.bin': randomBytes(64 * 1024) } })
  big = await image({ files: { 'big.bin': randomBytes(300 * 1024) } })
  await pushImage(upstream.url, 'source/big', 'v1', big)
  ferry = await startFerry({
    config: {
      upstreams: [{ name: 'up', url: upstream.url, prefix: 'upstream.test', default: true }],
      hosted: [{ prefix: 'team/', quota: '256KiB' }, { prefix: 'free/' }],
      gc: { interval: '1h', grace: '1s' },
      auth: { users: { ci: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['team/**', 'free/**'], allow: { 'user:ci': 'admin' } }] },
    },
  })
})
t.teardown(async () => { await ferry?.stop(); await upstream?.stop() })

t.test('what fits is taken, and counted', async t => {
  await pushImage(ferry.url, 'team/app', 'v1', small, AUTH)
  const bytes = small.layers[0]!.bytes.length + small.config.bytes.length + small.manifest.bytes.length
  t.equal(await usage(ferry), bytes, 'ferry_namespace_usage_bytes counts its layer, config and manifest')
  // the same image in another repository of the namespace: its blobs count once
  await pushImage(ferry.url, 'team/copy', 'v1', small, AUTH)
  t.equal(await usage(ferry), bytes + small.manifest.bytes.length, 'a layer held twice in the namespace counts once')
})

t.test('a whole upload past the quota is refused with DENIED, naming usage and limit, and leaves nothing behind', async t => {
  const layer = big.layers[0]!
  const start = await get(`${ferry.url}/v2/team/app/blobs/uploads/`, { authorization: AUTH }, 'POST')
  t.equal(start.status, 202)
  const put = await fetch(`${ferry.url}${start.header('location')!}${start.header('location')!.includes('?') ? '&' : '?'}digest=${layer.digest}`, {
    method: 'PUT', headers: { authorization: AUTH, 'content-type': 'application/octet-stream' }, body: layer.bytes,
  })
  const body = await put.json() as { errors: { code: string, message: string }[] }
  t.equal(put.status, 403)
  t.equal(body.errors[0]!.code, 'DENIED')
  t.match(body.errors[0]!.message, /team\/.*quota of 262144/, 'the message names the namespace and its quota')
  t.notOk(inStore(ferry, layer.digest), 'the layer is not in the store')
  t.same(uploadsLeft(ferry), [], 'no upload session is left')
  t.equal((await get(`${ferry.url}/v2/team/app/blobs/${layer.digest}`, { authorization: AUTH }, 'HEAD')).status, 404)
})

t.test('a chunked upload is refused as it passes the room left, and the session is gone', async t => {
  const start = await get(`${ferry.url}/v2/team/app/blobs/uploads/`, { authorization: AUTH }, 'POST')
  const location = start.header('location')!
  const chunk = randomBytes(128 * 1024)
  const first = await fetch(`${ferry.url}${location}`, { method: 'PATCH', headers: { authorization: AUTH, 'content-type': 'application/octet-stream', 'content-range': `0-${chunk.length - 1}` }, body: chunk })
  await first.arrayBuffer()
  t.equal(first.status, 202, 'the first chunk fits')
  const second = await fetch(`${ferry.url}${first.headers.get('location')!}`, { method: 'PATCH', headers: { authorization: AUTH, 'content-type': 'application/octet-stream', 'content-range': `${chunk.length}-${2 * chunk.length - 1}` }, body: chunk })
  const body = await second.json() as { errors: { code: string, message: string }[] }
  t.equal(second.status, 403, 'the second does not')
  t.equal(body.errors[0]!.code, 'DENIED')
  t.match(body.errors[0]!.message, /bytes left/)
  const status = await get(`${ferry.url}${location}`, { authorization: AUTH })
  t.equal(status.status, 404)
  t.equal(ociError(status)?.code, 'BLOB_UPLOAD_UNKNOWN', 'the session is gone')
  t.same(uploadsLeft(ferry), [], 'and its file')
})

t.test('skopeo pushing an image past the quota fails with the reason, and the tag is not written', async t => {
  requireBinary('skopeo', 'skopeo')
  const err = await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `ci:${PASSWORD}`,
    `docker://${upstream.host}/source/big:v1`, `docker://${ferry.host}/team/big:v1`]).then(() => undefined, (e: { stderr: string }) => e)
  t.ok(err !== undefined, 'skopeo fails')
  t.match(err?.stderr ?? '', /quota/, `and says why: ${(err?.stderr ?? '').trim().split('\n').pop()?.slice(0, 200) ?? ''}`)
  t.equal((await get(`${ferry.url}/v2/team/big/manifests/v1`, { authorization: AUTH })).status, 404, 'no tag')
  t.notOk(inStore(ferry, big.layers[0]!.digest), 'no layer')
  // a namespace without a quota takes it
  await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `ci:${PASSWORD}`,
    `docker://${upstream.host}/source/big:v1`, `docker://${ferry.host}/free/big:v1`])
  t.equal((await get(`${ferry.url}/v2/free/big/manifests/v1`, { authorization: AUTH, accept: big.manifest.mediaType })).header('docker-content-digest'), big.manifest.digest)
})

t.test('a mount of a blob from outside the namespace counts; one the namespace holds does not', async t => {
  // free/big's layer is 300 KiB: mounting it into team/ would pass the quota
  const mount = await get(`${ferry.url}/v2/team/app/blobs/uploads/?mount=${big.layers[0]!.digest}&from=free/big`, { authorization: AUTH }, 'POST')
  t.equal(mount.status, 403)
  t.equal(ociError(mount)?.code, 'DENIED')
  const again = await get(`${ferry.url}/v2/team/other/blobs/uploads/?mount=${small.layers[0]!.digest}&from=team/app`, { authorization: AUTH }, 'POST')
  t.equal(again.status, 201, 'a layer of the namespace mounts into another of its repositories')
})

t.test('deleting and collecting gives the room back', async t => {
  const before = await usage(ferry)
  t.equal((await get(`${ferry.url}/v2/team/app/manifests/${small.manifest.digest}`, { authorization: AUTH }, 'DELETE')).status, 202)
  t.equal((await get(`${ferry.url}/v2/team/copy/manifests/${small.manifest.digest}`, { authorization: AUTH }, 'DELETE')).status, 202)
  await new Promise(resolve => setTimeout(resolve, 1500))
  await run(process.execPath, [CLI, 'gc', '--config', ferry.configPath])
  // the proxy remembers usage for a few seconds
  await new Promise(resolve => setTimeout(resolve, 5500))
  const fits = blob('application/octet-stream', randomBytes(200 * 1024))
  await pushBlob(ferry.url, 'team/app', fits, AUTH)
  t.ok(await usage(ferry) < before + fits.bytes.length, `usage fell before the push (${before} before the delete, ${await usage(ferry)} with 200 KiB more)`)
  t.ok(inStore(ferry, fits.digest), 'a 200 KiB blob fits again')
})
