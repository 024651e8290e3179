// Hosted repositories, pushed to and pulled from by real clients: skopeo
// (an image, a multi-platform index with --all), dockerd and podman (login
// with Basic and with the token flow, push, pull back), containerd (pull),
// and raw requests for what no client here shows: an artifact with a subject
// and the referrers API, a chunked upload cut and resumed, mounts, the
// access rules, a blob asked for under another repository, deletes, tag
// pages and the catalog.
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { create as createTar } from 'tar'
import { startContainerd } from '../helpers/containerd.ts'
import { startDockerd } from '../helpers/dockerd.ts'
import { CLI, startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { artifact, blob, digestOf, image, index, pushBlob, pushImage, pushManifest, OCI_INDEX, OCI_MANIFEST, type Image } from '../helpers/images.ts'
import { requireBinary, startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'
import { scratchDir } from '../helpers/procs.ts'

const run = promisify(execFile)
const PASSWORDS = { alice: 'alice-Hosted-1', bob: 'bob-Hosted-2', carol: 'carol-Hosted-3' }
const dir = scratchDir('ferry-hosted-')
let upstream: Registry
let basic: Ferry
let tokens: Ferry
let img: Image
let amd64: Image
let arm64: Image

const auth = (user: keyof typeof PASSWORDS): string => `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}`
const creds = (user: keyof typeof PASSWORDS): string => `${user}:${PASSWORDS[user]}`

t.before(async () => {
  registerSecret(...Object.values(PASSWORDS))
  upstream = await startRegistry()
  img = await image({ files: { 'hello.txt': 'hello from a pushed image\n' } })
  amd64 = await image({ arch: 'amd64', files: { 'arch.txt': 'amd64\n' } })
  arm64 = await image({ arch: 'arm64', files: { 'arch.txt': 'arm64\n' } })
  await pushImage(upstream.url, 'source/app', 'v1', img)
  await pushImage(upstream.url, 'source/multi', undefined, amd64)
  await pushImage(upstream.url, 'source/multi', undefined, arm64)
  await pushManifest(upstream.url, 'source/multi', 'v1', index([amd64, arm64]))
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const authConfig = {
    users: Object.fromEntries(Object.entries(PASSWORDS).map(([u, p]) => [u, bcrypt.hashSync(p, 8)])),
    access: [
      { repositories: ['acme/secret/**'], allow: { 'user:carol': 'admin' } },
      { repositories: ['acme/**'], allow: { 'user:alice': 'writer', 'user:bob': 'reader', 'user:carol': 'admin' } },
      // carol may do anything the rules can give on proxied names: they are still read-only
      { repositories: ['upstream.test/**'], allow: { 'user:carol': 'admin', 'user:alice': 'reader', 'user:bob': 'reader' } },
      { repositories: ['**'], allow: { 'user:alice': 'reader', 'user:bob': 'reader' } },
    ],
  }
  const config = (token: boolean): Record<string, unknown> => ({
    upstreams: [{ name: 'up', url: upstream.url, prefix: 'upstream.test', default: true }],
    hosted: [{ prefix: 'acme/' }],
    auth: token ? { ...authConfig, token: { keyFile: join(dir, 'token.pem'), service: 'ferry-hosted' } } : authConfig,
  })
  basic = await startFerry({ config: config(false) })
  tokens = await startFerry({ config: config(true) })
})
t.teardown(async () => { await basic?.stop(); await tokens?.stop(); await upstream?.stop() })

async function skopeo (...args: string[]): Promise<string> {
  requireBinary('skopeo', 'skopeo')
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024 })
    return stdout
  } catch (err) {
    // the command as given, less the credentials
    const shown = args.map((a, i) => /creds$/.test(args[i - 1] ?? '') ? '***' : a)
    throw new Error(`skopeo ${shown.join(' ')}: ${String((err as { stderr?: string }).stderr ?? err)}`)
  }
}

/** A filesystem tarball, for `docker import` and `podman import`. */
async function rootfs (text: string): Promise<string> {
  const root = mkdtempSync(join(dir, 'rootfs-'))
  writeFileSync(join(root, 'hello.txt'), text)
  const tarball = join(dir, `${randomBytes(4).toString('hex')}.tar`)
  await createTar({ cwd: root, file: tarball, portable: true }, ['hello.txt'])
  return tarball
}

t.test('skopeo copies an image and a multi-platform index into a hosted repository, and gets them back by tag and digest', async t => {
  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds('alice'), `docker://${upstream.host}/source/app:v1`, `docker://${basic.host}/acme/app:v1`)
  const raw = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds('bob'), `docker://${basic.host}/acme/app:v1`)
  t.equal(digestOf(raw), img.manifest.digest, 'the same manifest by tag, read by a reader')
  const out = join(dir, 'pulled')
  await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds('bob'), `docker://${basic.host}/acme/app@${img.manifest.digest}`, `oci:${out}:v1`)
  t.ok(true, 'pulled whole by digest')
  t.equal(upstream.count('GET', '/v2/acme/app/'), 0, 'a hosted name is never asked of the upstream')

  await skopeo('copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds('alice'), `docker://${upstream.host}/source/multi:v1`, `docker://${basic.host}/acme/multi:v1`)
  const idx = JSON.parse(await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds('bob'), `docker://${basic.host}/acme/multi:v1`)) as { manifests: { digest: string }[] }
  t.same(idx.manifests.map(m => m.digest).sort(), [amd64.manifest.digest, arm64.manifest.digest].sort(), 'the index with both platforms')
  for (const p of [amd64, arm64]) {
    const child = await get(`${basic.url}/v2/acme/multi/manifests/${p.manifest.digest}`, { authorization: auth('bob'), accept: OCI_MANIFEST })
    t.equal(child.status, 200, 'each platform\'s manifest by digest')
    const layer = await get(`${basic.url}/v2/acme/multi/blobs/${p.layers[0]!.digest}`, { authorization: auth('bob') })
    t.equal(digestOf(layer.body), p.layers[0]!.digest, 'and its layer')
  }
})

t.test('dockerd: docker login (Basic, then the token flow), push, and pull back', async t => {
  const docker = await startDockerd([basic.host, tokens.host])
  t.teardown(() => docker.stop())
  for (const f of [basic, tokens]) {
    const mode = f === basic ? 'basic' : 'token'
    await docker.docker(['login', f.host, '-u', 'alice', '--password-stdin'], PASSWORDS.alice)
    const tarball = await rootfs(`pushed by docker (${mode})\n`)
    const ref = `${f.host}/acme/docker-${mode}:v1`
    await docker.docker(['import', tarball, ref])
    const pushed = await docker.docker(['push', ref])
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed)?.[1]
    t.ok(digest, `${mode}: pushed, with a digest`)
    await docker.docker(['rmi', ref])
    await docker.docker(['pull', ref])
    const images = await docker.docker(['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}'])
    t.match(images, `${f.host}/acme/docker-${mode}:v1 ${digest}`, `${mode}: pulled back, the same digest`)
    const m = await get(`${f.url}/v2/acme/docker-${mode}/manifests/v1`, { authorization: auth('alice'), accept: 'application/vnd.docker.distribution.manifest.v2+json' })
    t.equal(f === basic ? m.header('docker-content-digest') : digest, digest, `${mode}: ferry serves what docker pushed`)
  }
})

t.test('podman: login (Basic, then the token flow), push, and pull back', async t => {
  requireBinary('podman', 'podman')
  requireBinary('unshare', 'util-linux')
  for (const f of [basic, tokens]) {
    const mode = f === basic ? 'basic' : 'token'
    const pdir = scratchDir('ferry-podman-push-')
    for (const sub of ['root', 'run', 'tmp', 'varlib', 'auth']) mkdirSync(join(pdir, sub))
    const tarball = await rootfs(`pushed by podman (${mode})\n`)
    const podman = `REGISTRY_AUTH_FILE=${pdir}/auth/auth.json podman --root ${pdir}/root --runroot ${pdir}/run --tmpdir ${pdir}/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file`
    const ref = `${f.host}/acme/podman-${mode}:v1`
    const script = [
      'set -e',
      'mount -t tmpfs tmpfs /run',
      'mkdir -p /var/lib/containers',
      `mount --bind ${pdir}/varlib /var/lib/containers`,
      `echo "$PASS" | ${podman} login --tls-verify=false -u alice --password-stdin ${f.host}`,
      `${podman} import ${tarball} ${ref}`,
      `${podman} push --tls-verify=false --digestfile ${pdir}/digest ${ref}`,
      `${podman} rmi ${ref}`,
      `${podman} pull --tls-verify=false ${ref}`,
      `echo "pushed $(cat ${pdir}/digest)"`,
      `echo "pulled $(${podman} image inspect --format '{{.Digest}}' ${ref})"`,
    ].join('\n')
    const { stdout } = await run('unshare', ['-m', 'bash', '-c', script], { timeout: 180_000, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, PASS: PASSWORDS.alice } })
    const digest = /^pushed (sha256:[a-f0-9]{64})$/m.exec(stdout)?.[1]
    t.ok(digest, `${mode}: pushed, with a digest`)
    t.match(stdout, `pulled ${digest}`, `${mode}: pulled back, the same digest`)
    const m = await get(`${f.url}/v2/acme/podman-${mode}/manifests/v1`, { authorization: auth('bob'), accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' })
    t.equal(f === basic ? m.header('docker-content-digest') : digest, digest, `${mode}: ferry serves what podman pushed`)
  }
})

t.test('containerd pulls a hosted image', async t => {
  const { sock, hosts, stop } = await startContainerd({})
  t.teardown(stop)
  const { stdout } = await run('ctr', ['--address', sock, 'images', 'pull', '--plain-http', '--hosts-dir', hosts, '--snapshotter', 'native', '--user', creds('bob'), `${basic.host}/acme/app:v1`], { maxBuffer: 16 * 1024 * 1024 })
  t.match(stdout, 'done')
  const ls = (await run('ctr', ['--address', sock, 'images', 'ls'])).stdout
  t.match(ls, img.manifest.digest)
})

t.test('an artifact with a subject: OCI-Subject on the push, and the referrers API answers from what was pushed', async t => {
  const sbom = artifact(img.manifest, 'application/vnd.example.sbom.v1+json', '{"packages":[]}')
  const sig = artifact(img.manifest, 'application/vnd.example.signature.v1', 'signed')
  for (const a of [sbom, sig]) {
    await pushBlob(basic.url, 'acme/app', a.config, auth('alice'))
    await pushBlob(basic.url, 'acme/app', a.layer, auth('alice'))
  }
  const put = await putManifest(basic, 'acme/app', sbom.manifest.digest, sbom.manifest.bytes, OCI_MANIFEST, auth('alice'))
  t.equal(put.status, 201)
  t.equal(put.header('oci-subject'), img.manifest.digest, 'OCI-Subject names the subject')
  t.equal((await putManifest(basic, 'acme/app', sig.manifest.digest, sig.manifest.bytes, OCI_MANIFEST, auth('alice'))).status, 201)
  const all = await get(`${basic.url}/v2/acme/app/referrers/${img.manifest.digest}`, { authorization: auth('bob') })
  t.equal(all.status, 200)
  t.equal(all.header('content-type'), OCI_INDEX)
  const listed = (all.json() as { manifests: { digest: string, artifactType: string }[] }).manifests
  t.same(listed.map(m => m.digest).sort(), [sbom.manifest.digest, sig.manifest.digest].sort(), 'both referrers')
  t.equal(listed.find(m => m.digest === sbom.manifest.digest)?.artifactType, 'application/vnd.example.sbom.v1+json')
  const filtered = await get(`${basic.url}/v2/acme/app/referrers/${img.manifest.digest}?artifactType=${encodeURIComponent('application/vnd.example.signature.v1')}`, { authorization: auth('bob') })
  t.same((filtered.json() as { manifests: { digest: string }[] }).manifests.map(m => m.digest), [sig.manifest.digest], 'filtered by artifactType')
  t.equal(filtered.header('oci-filters-applied'), 'artifactType')
  const none = await get(`${basic.url}/v2/acme/multi/referrers/${img.manifest.digest}`, { authorization: auth('bob') })
  t.same((none.json() as { manifests: unknown[] }).manifests, [], 'referrers are per repository')
})

t.test('a chunked upload cut mid-way resumes from the offset the status reports', async t => {
  const bytes = randomBytes(3 * 1024 * 1024 + 11)
  const b = blob('application/octet-stream', bytes)
  const start = await get(`${basic.url}/v2/acme/chunks/blobs/uploads/`, { authorization: auth('alice') }, 'POST')
  t.equal(start.status, 202)
  const location = String(start.headers.location)
  // the first chunk, cut: its request claims 2 MiB and the connection drops after 1 MiB + 7
  await cutUpload(basic, location, bytes.subarray(0, 1024 * 1024 + 7), 2 * 1024 * 1024, auth('alice'))
  const status = await get(`${basic.url}${location}`, { authorization: auth('alice') })
  t.equal(status.status, 204)
  const held = Number(/^0-(\d+)$/.exec(String(status.headers.range))?.[1]) + 1
  t.equal(held, 1024 * 1024 + 7, `the upload holds what arrived (${held} bytes)`)
  const wrong = await patch(basic, location, bytes.subarray(held + 10), held + 10, auth('alice'))
  t.equal(wrong.status, 416, 'a chunk out of order is refused')
  const rest = await patch(basic, location, bytes.subarray(held), held, auth('alice'))
  t.equal(rest.status, 202)
  const done = await get(`${basic.url}${location}?digest=${b.digest}`, { authorization: auth('alice'), 'content-length': '0' }, 'PUT')
  t.equal(done.status, 201)
  const back = await get(`${basic.url}/v2/acme/chunks/blobs/${b.digest}`, { authorization: auth('bob') })
  t.equal(digestOf(back.body), b.digest, 'the whole blob, resumed')
  const other = await get(`${basic.url}/v2/acme/elsewhere/blobs/uploads/`, { authorization: auth('alice') }, 'POST')
  const stolen = await get(`${basic.url}/v2/acme/elsewhere/blobs/uploads/${String(start.headers.location).split('/').pop()}`, { authorization: auth('alice') })
  t.equal(stolen.status, 404, 'an upload is continued only through the repository it was started for')
  t.equal(ociError(stolen)?.code, 'BLOB_UPLOAD_UNKNOWN')
  t.equal(other.status, 202)
})

t.test('mounts: from a repository the pusher may pull, a mount; from one it may not, an ordinary upload', async t => {
  const secret = blob('application/octet-stream', randomBytes(2000))
  await pushBlob(basic.url, 'acme/secret/vault', secret, auth('carol'))
  const denied = await get(`${basic.url}/v2/acme/app/blobs/uploads/?mount=${secret.digest}&from=acme/secret/vault`, { authorization: auth('alice') }, 'POST')
  t.equal(denied.status, 202, 'alice may not pull acme/secret/vault: she gets an upload, not the blob')
  t.equal((await get(`${basic.url}/v2/acme/app/blobs/${secret.digest}`, { authorization: auth('alice') })).status, 404, 'and acme/app does not hold it')
  const ok = await get(`${basic.url}/v2/acme/mounted/blobs/uploads/?mount=${img.layers[0]!.digest}&from=acme/app`, { authorization: auth('alice') }, 'POST')
  t.equal(ok.status, 201, 'a mount from a repository she may pull')
  t.equal(ok.header('docker-content-digest'), img.layers[0]!.digest)
  t.equal(digestOf((await get(`${basic.url}/v2/acme/mounted/blobs/${img.layers[0]!.digest}`, { authorization: auth('bob') })).body), img.layers[0]!.digest)
})

t.test('who may push: a writer, not a reader, not anonymous; proxied repositories are read-only', async t => {
  const reader = await get(`${basic.url}/v2/acme/app/blobs/uploads/`, { authorization: auth('bob') }, 'POST')
  t.equal(reader.status, 403, 'a reader\'s push')
  t.equal(ociError(reader)?.code, 'DENIED')
  t.equal((await get(`${basic.url}/v2/acme/app/blobs/uploads/`, {}, 'POST')).status, 401, 'anonymous')
  const proxied = await get(`${basic.url}/v2/upstream.test/source/app/blobs/uploads/`, { authorization: auth('carol') }, 'POST')
  t.equal(proxied.status, 405, 'a proxied repository is read-only, even to an admin of it')
  t.equal(ociError(proxied)?.code, 'UNSUPPORTED')
  const bad = await putManifest(basic, 'acme/app', 'v2', Buffer.from('{not json'), OCI_MANIFEST, auth('alice'))
  t.equal(bad.status, 400)
  t.equal(ociError(bad)?.code, 'MANIFEST_INVALID')
  const mislabelled = await putManifest(basic, 'acme/app', 'v2', img.manifest.bytes, OCI_INDEX, auth('alice'))
  t.equal(mislabelled.status, 400, 'a manifest sent as an index')
  t.equal(ociError(mislabelled)?.code, 'MANIFEST_INVALID')
  t.match(mislabelled.body.toString(), /is not its Content-Type/, 'and says why')
  const foreign = await putManifest(basic, 'acme/app', 'v2', Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] })), 'text/plain', auth('alice'))
  t.equal(foreign.status, 400, 'a media type that is no manifest')
  t.equal(ociError(foreign)?.code, 'MANIFEST_INVALID')
  const huge = await putManifest(basic, 'acme/app', 'v2', Buffer.concat([Buffer.from('{"schemaVersion":2,"annotations":{"x":"'), Buffer.alloc(4 * 1024 * 1024 + 1, 'a'), Buffer.from('"}}')]), OCI_MANIFEST, auth('alice'))
  t.equal(huge.status, 413, 'a body over 4 MiB')
  t.equal(ociError(huge)?.code, 'MANIFEST_INVALID')
  t.equal((await get(`${basic.url}/v2/acme/app/manifests/v2`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 404, 'none of them was tagged')
  const orphan = await image()
  const missing = await putManifest(basic, 'acme/app', 'orphan', orphan.manifest.bytes, OCI_MANIFEST, auth('alice'))
  t.equal(missing.status, 400, 'a manifest whose blobs are not in the repository')
  t.equal(ociError(missing)?.code, 'MANIFEST_BLOB_UNKNOWN')
  t.equal((await get(`${basic.url}/v2/acme/app/manifests/orphan`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 404, 'and its tag is not served')
})

t.test('a robot with a writer scope pushes with skopeo inside its scope, and only there', async t => {
  const { stdout } = await run(process.execPath, [CLI, 'robot', 'create', 'builder', '--scope', 'acme/ci/**=writer', '--config', basic.configPath])
  const robot = JSON.parse(stdout) as { user: string, secret: string }
  registerSecret(robot.secret)
  const creds = `${robot.user}:${robot.secret}`
  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds, `docker://${upstream.host}/source/app:v1`, `docker://${basic.host}/acme/ci/app:v1`)
  const raw = await skopeo('inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${basic.host}/acme/ci/app:v1`)
  t.equal(digestOf(raw), img.manifest.digest, 'pushed, and read back by the robot')
  const outside = await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds, `docker://${upstream.host}/source/app:v1`, `docker://${basic.host}/acme/app:robot`).then(() => '', (err: Error) => err.message)
  t.match(outside, /403 \(Forbidden\)|denied/i, 'outside its scope skopeo is refused')
  t.equal((await get(`${basic.url}/v2/acme/app/manifests/robot`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 404, 'and nothing was tagged there')
})

t.test('a digest is read only through a repository that holds it', async t => {
  const other = await get(`${basic.url}/v2/acme/chunks/blobs/${img.layers[0]!.digest}`, { authorization: auth('bob') })
  t.equal(other.status, 404, 'acme/app\'s layer under acme/chunks')
  t.equal(ociError(other)?.code, 'BLOB_UNKNOWN')
  t.notOk(other.body.includes(img.layers[0]!.bytes), 'none of its bytes')
  const manifest = await get(`${basic.url}/v2/acme/chunks/manifests/${img.manifest.digest}`, { authorization: auth('bob'), accept: OCI_MANIFEST })
  t.equal(manifest.status, 404, 'nor its manifest by digest')
  // a proxied repository whose upstream does not have the blob: the region holds it (for acme/app), the upstream says no
  const proxied = await get(`${basic.url}/v2/upstream.test/source/other/blobs/${img.layers[0]!.digest}`, { authorization: auth('bob') })
  t.equal(proxied.status, 404, 'a proxied repository gets it only when its upstream has it under that name')
  t.equal(upstream.count('GET', `/v2/source/other/blobs/${img.layers[0]!.digest}`), 0, 'asked with a HEAD, not fetched')
  const confirmed = await get(`${basic.url}/v2/upstream.test/source/app/blobs/${img.layers[0]!.digest}`, { authorization: auth('bob') })
  t.equal(digestOf(confirmed.body), img.layers[0]!.digest, 'under the name the upstream has it: served')
})

t.test('deletes: a tag, then the manifest; only an admin', async t => {
  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds('alice'), `docker://${upstream.host}/source/app:v1`, `docker://${basic.host}/acme/deleting:v1`)
  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds('alice'), `docker://${upstream.host}/source/app:v1`, `docker://${basic.host}/acme/deleting:v2`)
  const writer = await get(`${basic.url}/v2/acme/deleting/manifests/v1`, { authorization: auth('alice') }, 'DELETE')
  t.equal(writer.status, 403, 'a writer may not delete')
  const tag = await get(`${basic.url}/v2/acme/deleting/manifests/v1`, { authorization: auth('carol') }, 'DELETE')
  t.equal(tag.status, 202, 'an admin deletes a tag')
  const list = (await get(`${basic.url}/v2/acme/deleting/tags/list`, { authorization: auth('bob') })).json() as { tags: string[] }
  t.same(list.tags, ['v2'], 'it no longer lists')
  t.equal((await get(`${basic.url}/v2/acme/deleting/manifests/v1`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 404)
  t.equal((await get(`${basic.url}/v2/acme/deleting/manifests/${img.manifest.digest}`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 200, 'the manifest stays pullable by digest')
  const byDigest = await get(`${basic.url}/v2/acme/deleting/manifests/${img.manifest.digest}`, { authorization: auth('carol') }, 'DELETE')
  t.equal(byDigest.status, 202, 'then the manifest by digest')
  t.equal((await get(`${basic.url}/v2/acme/deleting/manifests/${img.manifest.digest}`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 404, 'gone')
  t.same(((await get(`${basic.url}/v2/acme/deleting/tags/list`, { authorization: auth('bob') })).json() as { tags: string[] }).tags, [], 'with the tags that named it')
  t.equal((await get(`${basic.url}/v2/acme/app/manifests/v1`, { authorization: auth('bob'), accept: OCI_MANIFEST })).status, 200, 'another repository keeps its own')
  const blobDelete = await get(`${basic.url}/v2/acme/deleting/blobs/${img.layers[0]!.digest}`, { authorization: auth('carol') }, 'DELETE')
  t.equal(blobDelete.status, 202, 'a blob of the repository')
  t.equal((await get(`${basic.url}/v2/acme/deleting/blobs/${img.layers[0]!.digest}`, { authorization: auth('bob') })).status, 404)
  t.equal((await get(`${basic.url}/v2/upstream.test/source/app/manifests/v1`, { authorization: auth('carol') }, 'DELETE')).status, 405, 'nobody deletes from a proxied repository, not even its admin')
})

t.test('tags lists page with n and last; the catalog lists what the caller may pull', async t => {
  for (const tag of ['b', 'a', 'd', 'c']) {
    t.equal((await putManifest(basic, 'acme/app', tag, img.manifest.bytes, OCI_MANIFEST, auth('alice'))).status, 201)
  }
  const first = await get(`${basic.url}/v2/acme/app/tags/list?n=2`, { authorization: auth('bob') })
  t.same((first.json() as { tags: string[] }).tags, ['a', 'b'])
  t.match(first.header('link'), /<\/v2\/acme\/app\/tags\/list\?n=2&last=b>; rel="next"/)
  const second = await get(`${basic.url}/v2/acme/app/tags/list?n=2&last=b`, { authorization: auth('bob') })
  t.same((second.json() as { tags: string[] }).tags, ['c', 'd'])
  const bob = (await get(`${basic.url}/v2/_catalog`, { authorization: auth('bob') })).json() as { repositories: string[] }
  t.ok(bob.repositories.includes('acme/app') && bob.repositories.includes('acme/multi'), 'bob sees what he may pull')
  t.notOk(bob.repositories.includes('acme/secret/vault'), 'and not what he may not')
  const carol = (await get(`${basic.url}/v2/_catalog`, { authorization: auth('carol') })).json() as { repositories: string[] }
  t.ok(carol.repositories.includes('acme/secret/vault'))
  const paged = await get(`${basic.url}/v2/_catalog?n=1`, { authorization: auth('carol') })
  t.equal((paged.json() as { repositories: string[] }).repositories.length, 1)
  t.match(paged.header('link'), /rel="next"/)
})

t.test('catalog requests that come at once share one walk of the repositories', async t => {
  const walks = async (): Promise<number> => Number(/^ferry_repository_listings_total (\S+)$/m.exec((await get(`${basic.url}/metrics`)).body.toString())?.[1])
  const one = (await get(`${basic.url}/v2/_catalog`, { authorization: auth('carol') })).json() as { repositories: string[] }
  const before = await walks()
  t.ok(Number.isFinite(before), 'the walks are counted on /metrics')
  const many = await Promise.all(Array.from({ length: 50 }, async () => await get(`${basic.url}/v2/_catalog`, { authorization: auth('carol') })))
  t.ok(many.every(r => r.status === 200 && JSON.stringify(r.json()) === JSON.stringify(one)), 'each of 50 gets the whole list')
  const walked = await walks() - before
  t.ok(walked <= 1, `50 requests at once walked the state ${walked} times (a walk is kept while this process adds no repository)`)
  const mounted = await get(`${basic.url}/v2/acme/listed-at-once/blobs/uploads/?mount=${img.layers[0]!.digest}&from=acme/app`, { authorization: auth('alice') }, 'POST')
  t.equal(mounted.status, 201, 'a blob mounted into a new repository')
  const after = (await get(`${basic.url}/v2/_catalog`, { authorization: auth('carol') })).json() as { repositories: string[] }
  t.ok(after.repositories.includes('acme/listed-at-once'), 'the new repository is listed at once')
  t.equal(after.repositories.length, one.repositories.length + 1, 'and nothing else changed')
})

async function putManifest (f: Ferry, repo: string, reference: string, body: Buffer, type: string, authorization: string): Promise<Awaited<ReturnType<typeof get>>> {
  return await sendBody(f, `/v2/${repo}/manifests/${reference}`, 'PUT', { 'content-type': type, authorization }, body)
}

async function patch (f: Ferry, location: string, bytes: Buffer, start: number, authorization: string): Promise<Awaited<ReturnType<typeof get>>> {
  return await sendBody(f, location, 'PATCH', { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + bytes.length - 1}`, authorization }, bytes)
}

async function sendBody (f: Ferry, path: string, method: string, headers: Record<string, string>, body: Buffer): Promise<Awaited<ReturnType<typeof get>>> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: f.port, path, method, headers: { ...headers, 'content-length': String(body.length) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const b = Buffer.concat(chunks)
        resolve({ status: res.statusCode!, headers: res.headers, body: b, json: <T>() => JSON.parse(b.toString()) as T, header: (n: string) => { const v = res.headers[n]; return Array.isArray(v) ? v[0] : v } })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A PATCH that declares `declared` bytes, sends `bytes`, and drops the connection. */
async function cutUpload (f: Ferry, location: string, bytes: Buffer, declared: number, authorization: string): Promise<void> {
  await new Promise<void>(resolve => {
    const req = httpRequest({ host: '127.0.0.1', port: f.port, path: location, method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-length': String(declared), authorization } })
    req.on('error', () => resolve())
    req.on('response', res => { res.resume(); resolve() })
    req.write(bytes, () => setTimeout(() => { req.destroy(); setTimeout(resolve, 300) }, 200))
  })
}
