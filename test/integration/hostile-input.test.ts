// What a hostile client sends (hardening findings 3, 8 and parts of 9): no
// request kills the process, a manifest is checked against the image spec
// before anything of it is kept, the client's Host header cannot rewrite a
// challenge, Range is read as RFC 9110 says, the HTTP parser's refusals
// carry an OCI body, an upload belongs to the repository it was started
// for, and abandoned uploads go while the process runs.
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { connect } from 'node:net'

import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get, ociError, type Answer } from '../helpers/http.ts'
import { blob, digestOf, image, pushBlob, pushImage, OCI_MANIFEST, OCI_CONFIG } from '../helpers/images.ts'
import { registerSecret } from '../helpers/secrets.ts'
import { scratchDir } from '../helpers/procs.ts'

const PASSWORD = 'hostile-Writer-Passw0rd'
const AUTH = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`
const dir = scratchDir('ferry-hostile-')
let ferry: Ferry

t.before(async () => {
  registerSecret(PASSWORD)
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  ferry = await startFerry({
    config: {
      upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', prefix: 'nowhere.test', default: true }],
      hosted: [{ prefix: 'acme/' }],
      gc: { interval: '1s', grace: '1h', uploads: '2s' },
      auth: { users: { ci: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['acme/**'], allow: { 'user:ci': 'admin' } }] },
      audit: { file: join(dir, 'audit.jsonl') },
    },
  })
})
t.teardown(() => ferry?.stop())

/** A request with a body, as raw as the test needs (node:http through fetch would refuse some of these). */
async function send (path: string, method: string, headers: Record<string, string>, body: Buffer): Promise<Answer & { error?: string }> {
  const res = await fetch(`${ferry.url}${path}`, { method, headers, body }).catch((err: Error) => err)
  if (res instanceof Error) return { status: 0, headers: {}, body: Buffer.alloc(0), json: () => ({}) as never, header: () => undefined, error: res.message }
  const bytes = Buffer.from(await res.arrayBuffer())
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers),
    body: bytes,
    json<T> () { return JSON.parse(bytes.toString()) as T },
    header (name) { return res.headers.get(name) ?? undefined },
  }
}

const alive = async (): Promise<boolean> => (await get(`${ferry.url}/v2/`, { authorization: AUTH })).status === 200 && ferry.proc.child.exitCode === null

t.test('a manifest over the limit, sent by a writer, by nobody, or cut off, does not kill the process (audit on)', async t => {
  const huge = Buffer.alloc(5 * 1024 * 1024, 'a')
  const writer = await send('/v2/acme/app/manifests/v1', 'PUT', { authorization: AUTH, 'content-type': OCI_MANIFEST }, huge)
  t.equal(writer.status, 413)
  t.equal(ociError(writer)?.code, 'MANIFEST_INVALID')
  const nobody = await send('/v2/acme/app/manifests/v1', 'PUT', { 'content-type': OCI_MANIFEST }, huge)
  t.equal(nobody.status, 401, 'no credentials: refused before the body is read')
  // a client that sends half a body and goes away
  await new Promise<void>(resolve => {
    const s = connect(ferry.port, '127.0.0.1', () => {
      s.write(`PUT /v2/acme/app/manifests/v1 HTTP/1.1\r\nhost: x\r\nauthorization: ${AUTH}\r\ncontent-type: ${OCI_MANIFEST}\r\ncontent-length: 5000000\r\n\r\n`)
      s.write(Buffer.alloc(100_000, 'a'), () => s.destroy())
    })
    s.on('close', () => resolve()); s.on('error', () => resolve())
  })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.ok(await alive(), 'the process answers after all three')
  const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8')
  t.match(audit, /"status":413/, 'and the 413 is in the audit log')
})

t.test('manifests are checked against the image spec before anything is kept', async t => {
  const img = await image()
  for (const b of [img.config, ...img.layers]) await pushBlob(ferry.url, 'acme/spec', b, AUTH)
  const base = JSON.parse(img.manifest.bytes.toString()) as Record<string, unknown> & { config: Record<string, unknown>, layers: Record<string, unknown>[] }
  // an otherwise valid manifest with a field nested 400,000 deep
  const deep = Buffer.from(`${img.manifest.bytes.toString().slice(0, -1)},"x":${'['.repeat(400_000)}${']'.repeat(400_000)}}`)
  const cases: [string, Buffer, string | undefined][] = [
    ['not JSON', Buffer.from('{"schemaVersion":'), OCI_MANIFEST],
    ['400,000 levels deep', deep, OCI_MANIFEST],
    ['no media type anywhere', Buffer.from(JSON.stringify({ schemaVersion: 2, config: base.config, layers: base.layers })), undefined],
    ['a negative size', Buffer.from(JSON.stringify({ ...base, layers: [{ ...base.layers[0], size: -5 }] })), OCI_MANIFEST],
    ['a size of 1e300', Buffer.from(JSON.stringify({ ...base, config: { ...base.config, size: 1e300 } })), OCI_MANIFEST],
    ['an image manifest as an index', img.manifest.bytes, 'application/vnd.oci.image.index.v1+json'],
    ['annotations that are not strings', Buffer.from(JSON.stringify({ ...base, annotations: { a: { b: 1 } } })), OCI_MANIFEST],
    ['schemaVersion 1', Buffer.from(JSON.stringify({ ...base, schemaVersion: 1 })), OCI_MANIFEST],
    ['a digest that is not one', Buffer.from(JSON.stringify({ ...base, config: { ...base.config, digest: 'sha256:nope' } })), OCI_MANIFEST],
  ]
  for (const [what, body, type] of cases) {
    const r = await send('/v2/acme/spec/manifests/bad', 'PUT', { authorization: AUTH, ...(type !== undefined ? { 'content-type': type } : {}) }, body)
    t.equal(r.status, 400, `${what}: 400`)
    t.equal(ociError(r)?.code, 'MANIFEST_INVALID', `${what}: MANIFEST_INVALID`)
  }
  t.equal((await get(`${ferry.url}/v2/acme/spec/manifests/bad`, { authorization: AUTH, accept: OCI_MANIFEST })).status, 404, 'none of them was tagged')
  t.same((await get(`${ferry.url}/v2/acme/spec/tags/list`, { authorization: AUTH })).json<{ tags?: string[] | null }>().tags ?? [], [], 'the repository has no tags')
  await pushImage(ferry.url, 'acme/spec', 'good', img, AUTH)
  t.pass('the valid manifest is taken')
})

t.test('the Host header cannot rewrite the token challenge', async t => {
  const tokens = await startFerry({
    config: {
      upstreams: [{ name: 'up', url: 'http://127.0.0.1:1', default: true }],
      auth: { users: { ci: bcrypt.hashSync(PASSWORD, 6) }, access: [{ repositories: ['**'], allow: { 'user:ci': 'reader' } }], token: { keyFile: join(dir, 'token.pem'), service: 'hostile' } },
    },
  })
  t.teardown(() => tokens.stop())
  const plain = await get(`${tokens.url}/v2/`)
  t.equal(plain.header('www-authenticate'), `Bearer realm="http://${tokens.host}/token",service="hostile"`, 'an ordinary Host names the realm')
  for (const host of ['evil.example",error="insufficient_scope', 'a b', 'x\ty']) {
    const r = await new Promise<string>((resolve, reject) => {
      const s = connect(tokens.port, '127.0.0.1', () => s.write(`GET /v2/ HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`))
      let text = ''
      s.on('data', d => { text += d.toString() })
      s.on('end', () => resolve(text)); s.on('error', reject)
    })
    const challenge = /www-authenticate: (.*)\r\n/i.exec(r)?.[1] ?? ''
    t.equal(challenge, 'Bearer realm="http://localhost/token",service="hostile"', `Host ${JSON.stringify(host)}: the challenge is ferry's own`)
  }
})

t.test('Range as RFC 9110 reads it: clamped, ignored when it is not a byte range, 416 only when unsatisfiable', async t => {
  const b = blob('application/octet-stream', randomBytes(1000))
  await pushBlob(ferry.url, 'acme/ranges', b, AUTH)
  const path = `${ferry.url}/v2/acme/ranges/blobs/${b.digest}`
  const ask = async (range: string): Promise<Answer> => await get(path, { authorization: AUTH, range })
  const clamped = await ask('bytes=0-99999999999999999999')
  t.equal(clamped.status, 206, 'a last position past the end is clamped')
  t.equal(clamped.header('content-range'), 'bytes 0-999/1000')
  t.equal(digestOf(clamped.body), b.digest)
  const tail = await ask('bytes=990-5000')
  t.equal(tail.header('content-range'), 'bytes 990-999/1000')
  for (const ignored of ['items=0-5', 'bytes=x-y', 'bytes=-', 'bytes 0-5', 'garbage']) {
    const r = await ask(ignored)
    t.equal(r.status, 200, `${JSON.stringify(ignored)}: ignored, the whole blob`)
    t.equal(digestOf(r.body), b.digest)
  }
  for (const bad of ['bytes=9-2', 'bytes=1000-', 'bytes=99999999999999999999-', 'bytes=-0']) {
    const r = await ask(bad)
    t.equal(r.status, 416, `${JSON.stringify(bad)}: 416`)
    t.equal(ociError(r)?.code, 'RANGE_INVALID')
  }
  t.equal((await ask('bytes=1000-')).header('content-range'), 'bytes */1000', 'an unsatisfiable range says the size')
})

t.test('what the HTTP parser refuses still gets an OCI error body', async t => {
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect(ferry.port, '127.0.0.1', () => s.write(`GET /v2/ HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`))
    let text = ''
    s.on('data', d => { text += d.toString() })
    s.on('end', () => resolve(text)); s.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 431 /, 'oversized headers: 431')
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { errors: { code: string, message: string }[] }
  t.equal(body.errors[0]!.code, 'UNSUPPORTED')
  t.match(body.errors[0]!.message, /headers too large/)
  t.ok(await alive())
})

t.test('an upload is continued only through the repository it was started for', async t => {
  const start = await get(`${ferry.url}/v2/acme/mine/blobs/uploads/`, { authorization: AUTH }, 'POST')
  const session = start.header('location')!.split('/').pop()!
  const other = await send(`/v2/acme/theirs/blobs/uploads/${session}`, 'PATCH', { authorization: AUTH, 'content-range': '0-3', 'content-type': 'application/octet-stream' }, Buffer.from('evil'))
  t.equal(other.status, 404)
  t.equal(ociError(other)?.code, 'BLOB_UPLOAD_UNKNOWN')
  const mine = await get(`${ferry.url}/v2/acme/mine/blobs/uploads/${session}`, { authorization: AUTH })
  t.equal(mine.header('range'), '0-0', 'the session holds nothing from the other path')
})

t.test('an upload nobody writes to goes while the process runs (gc.uploads)', async t => {
  const start = await get(`${ferry.url}/v2/acme/idle/blobs/uploads/`, { authorization: AUTH }, 'POST')
  const location = start.header('location')!
  const first = await send(location, 'PATCH', { authorization: AUTH, 'content-range': '0-9', 'content-type': 'application/octet-stream' }, Buffer.alloc(10, 1))
  t.equal(first.status, 202)
  const session = location.split('/').pop()!
  t.ok(existsSync(join(ferry.data, 'uploads', session)), 'the session is on disk')
  let gone = false
  for (let i = 0; i < 30 && !gone; i++) {
    await new Promise(resolve => setTimeout(resolve, 250))
    gone = !readdirSync(join(ferry.data, 'uploads')).some(n => n.startsWith(session))
  }
  t.ok(gone, 'its files are removed after gc.uploads (2 s)')
  const after = await get(`${ferry.url}${location}`, { authorization: AUTH })
  t.equal(ociError(after)?.code, 'BLOB_UPLOAD_UNKNOWN', 'and the session is unknown')
})
