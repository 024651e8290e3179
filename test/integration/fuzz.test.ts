// A robustness test that cannot be tuned to: fast-check generates requests
// (methods, paths, names, references, digests, query strings, headers,
// ranges, bodies, credentials) against a ferry with auth, the audit log and
// the push API on. After every request: the answer is an OCI error or a
// correct success (bytes that hash to the digest it names), ferry still
// answers /v2/, nothing failed in a way no layer names, and no content a rule
// denies reached someone it is denied to. Seeded and bounded here
// (FERRY_FUZZ_RUNS, FERRY_FUZZ_SEED for a longer or another run; the bench's
// --fuzz runs 5,000).
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import fc from 'fast-check'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { image, pushImage, OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { startRegistry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

const RUNS = Number(process.env.FERRY_FUZZ_RUNS ?? 500)
const SEED = Number(process.env.FERRY_FUZZ_SEED ?? 20261130)
const PASSWORDS = { alice: 'alice-Fuzz-1', bob: 'bob-Fuzz-2' }
const OCI_CODES = new Set(['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID', 'NAME_INVALID', 'NAME_UNKNOWN', 'TAG_INVALID', 'RANGE_INVALID', 'PAGINATION_NUMBER_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'UNAVAILABLE'])

interface Sent { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }

/** One raw request; undefined when Node's own client refuses to send it (an invalid header, say). */
async function send (port: number, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Sent | undefined> {
  return await new Promise((resolve, reject) => {
    let req
    try {
      // framed always: Node sends an OPTIONS or DELETE body unframed, which a server rightly reads as the next request
      const framing = body !== undefined ? { 'content-length': String(body.length) } : {}
      req = request({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...framing, ...headers }, timeout: 15_000 }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        // a transfer cut on purpose (a failed fill) is an answer too: what arrived is judged
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      })
    } catch {
      resolve(undefined)
      return
    }
    req.on('timeout', () => { req.destroy(new Error(`no answer to ${method} ${path} in 15 s`)) })
    req.on('error', err => {
      // Node refusing what it would send is not ferry's answer
      if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_') === true) resolve(undefined)
      else reject(err)
    })
    req.end(body)
  })
}

t.test('generated requests: OCI errors or correct successes, ferry keeps answering, denied content never leaks', async t => {
  registerSecret(...Object.values(PASSWORDS))
  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const open = await image({ files: { 'open.txt': 'anyone may read this\n' } })
  // what only alice may read: random bytes no other answer could contain by chance
  const secret = await image({ files: { 'secret.txt': randomBytes(64).toString('hex') } })
  await pushImage(upstream.url, 'lib/app', 'v1', open)
  await pushImage(upstream.url, 'secret/app', 'v1', secret)
  const dir = scratchDir('ferry-fuzz-')
  const ferry = await startFerry({ config: {
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    hosted: [{ prefix: 'acme/' }],
    audit: { file: join(dir, 'audit.jsonl') },
    auth: {
      users: { alice: bcrypt.hashSync(PASSWORDS.alice, 6), bob: bcrypt.hashSync(PASSWORDS.bob, 6) },
      access: [
        { repositories: ['secret/**'], allow: { 'user:alice': 'reader' } },
        { repositories: ['acme/**'], allow: { 'user:alice': 'writer', 'user:bob': 'reader' } },
        { repositories: ['lib/**'], allow: { anonymous: 'reader' } },
      ],
    },
  } })
  t.teardown(() => ferry.stop())
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  const alice = basic('alice', PASSWORDS.alice)

  // alice reads the secret once, so it is cached: what is denied must be denied from the cache too
  const primed = await send(ferry.port, 'GET', '/v2/secret/app/manifests/v1', { authorization: alice, accept: OCI_MANIFEST }, undefined)
  t.equal(primed?.status, 200)
  for (const b of [secret.config, ...secret.layers]) t.equal((await send(ferry.port, 'GET', `/v2/secret/app/blobs/${b.digest}`, { authorization: alice }, undefined))?.status, 200)
  const denied = (img: Image): Buffer[] => [img.manifest.bytes, img.config.bytes, ...img.layers.map(l => l.bytes)]
  const secrets = denied(secret)
  const secretDigests = new Set([secret.manifest.digest, secret.config.digest, ...secret.layers.map(l => l.digest)])
  const digests = [open, secret].flatMap(i => [i.manifest.digest, i.config.digest, ...i.layers.map(l => l.digest)])

  const segment = fc.oneof(
    fc.constantFrom('lib', 'app', 'secret', 'acme', 'ghcr.io', 'docker.io', 'library', '..', '.', '', '%2e%2e', 'A', '_x', 'x-', 'a'.repeat(300), 'v2', 'blobs', 'manifests', 'uploads'),
    fc.stringMatching(/^[a-z0-9._-]{1,12}$/),
    fc.string({ maxLength: 8 }),
  )
  const name = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('secret/app', 'lib/app') },
    { weight: 3, arbitrary: fc.constantFrom('acme/app', 'acme/other', 'up/secret/app', 'lib/app/../../secret/app', 'secret/app/', 'SECRET/app', 'secret//app', 'lib/app?ns=x', 'library/secret/app') },
    { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map(p => p.join('/')) },
  )
  const digest = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...digests) },
    { weight: 1, arbitrary: fc.constantFrom('sha256:' + 'a'.repeat(64), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'b'.repeat(128), 'sha256:short', 'md5:' + 'c'.repeat(32), 'sha256:' + 'g'.repeat(64), 'sha256:' + 'a'.repeat(65)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(b => 'sha256:' + Buffer.from(b).toString('hex')) },
  )
  const reference = fc.oneof(digest, fc.constantFrom('v1', 'latest', 'V1', '-bad', 'a'.repeat(129), ''), fc.stringMatching(/^[\w][\w.-]{0,20}$/))
  const query = fc.oneof(
    fc.constant(''),
    fc.constantFrom('?ns=docker.io', '?ns=ghcr.io', '?ns=', '?n=0', '?n=-1', '?n=99999999999', '?n=abc', '?last=zzz', '?digest=', '?mount=' + secret.config.digest + '&from=secret/app', '?mount=' + secret.config.digest + '&from=secret/app&ns=x', '?digest=sha256:' + 'a'.repeat(64), '?artifactType=x', '?%zz'),
    digest.map(d => `?digest=${d}`),
  )
  const path = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(name, fc.constantFrom('manifests', 'blobs', 'tags/list', 'blobs/uploads/', 'referrers'), reference, query).map(([n, kind, ref, q]) => kind === 'tags/list' || kind === 'blobs/uploads/' ? `/v2/${n}/${kind}${q}` : `/v2/${n}/${kind}/${ref}${q}`) },
    { weight: 1, arbitrary: fc.tuple(name, fc.uuid(), query).map(([n, u, q]) => `/v2/${n}/blobs/uploads/${u}${q}`) },
    { weight: 1, arbitrary: fc.constantFrom('/v2/', '/v2', '/', '/v2/_catalog', '/v2/_catalog?n=1000000', '/token', '/token?scope=repository:secret/app:pull&service=x', '/_ferry/v1/fills/' + secret.layers[0]!.digest, '/metrics', '/healthz', '/readyz', '/v2/secret/app/blobs/' + secret.layers[0]!.digest + '?ns=', '//v2/secret/app/manifests/v1', '/v2/./secret/app/manifests/v1', '/v2/%73ecret/app/manifests/v1') },
    { weight: 1, arbitrary: fc.webPath().map(p => p.startsWith('/') ? p : `/${p}`) },
  )
  // weighted to the requests that matter: someone other than alice, after alice's content
  const authorization = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant(basic('bob', PASSWORDS.bob)) },
    { weight: 1, arbitrary: fc.constant(alice) },
    { weight: 2, arbitrary: fc.constantFrom(basic('alice', 'wrong'), basic('bob', ''), basic('', ''), 'Basic', 'Basic !!!', 'Bearer x.y.z', 'Bearer ', 'Digest x', basic('alice:x', PASSWORDS.alice), basic('ALICE', PASSWORDS.alice)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(s => `Basic ${Buffer.from(s).toString('base64')}`) },
  )
  const headers = fc.record({
    authorization,
    range: fc.option(fc.oneof(fc.constantFrom('bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=5-2', 'bytes=0-99999999999999999999', 'items=0-1', 'bytes=a-b', 'bytes=0-1,3-4', 'bytes='), fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `bytes=${a}-${b}`)), { nil: undefined }),
    accept: fc.option(fc.constantFrom(OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, '*/*', 'text/html', 'application/json;q=0', `${OCI_MANIFEST}, ${OCI_INDEX}`, ''), { nil: undefined }),
    'content-type': fc.option(fc.constantFrom(OCI_MANIFEST, OCI_INDEX, 'application/octet-stream', 'text/plain', ''), { nil: undefined }),
    'content-range': fc.option(fc.constantFrom('0-9', '5-2', 'bytes 0-9/10', '0-99999999999999'), { nil: undefined }),
  }, { requiredKeys: [] })
  const body = fc.oneof(
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 2048 }).map(b => Buffer.from(b)),
    fc.constantFrom(
      Buffer.from('{'), Buffer.from('null'), Buffer.from('[]'), Buffer.from('{"schemaVersion":2}'),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: secret.config.digest, size: secret.config.bytes.length }, layers: [] })),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: secret.manifest.digest, size: -5 }] })),
      open.manifest.bytes,
    ),
  )
  const request$ = fc.record({ method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'), path, headers, body })

  const problems: string[] = []
  let sent = 0
  await fc.assert(fc.asyncProperty(request$, async r => {
    const hdrs: Record<string, string> = {}
    for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) hdrs[k] = v
    const answer = await send(ferry.port, r.method, r.path, hdrs, r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body)
    if (answer === undefined) return
    sent++
    const what = `${r.method} ${r.path} ${JSON.stringify(hdrs)} -> ${answer.status}`
    // an OCI error, or a success
    if (answer.status >= 500 && answer.status !== 502 && answer.status !== 503 && answer.status !== 504 && answer.status !== 507) throw new Error(`a 5xx no layer gives: ${what}`)
    const isV2 = r.path.startsWith('/v2')
    if (answer.status >= 400 && isV2 && r.method !== 'HEAD' && answer.body.length > 0) {
      let code: unknown
      try { code = (JSON.parse(answer.body.toString()) as { errors: { code: string }[] }).errors[0]?.code } catch { /* judged below */ }
      if (typeof code !== 'string' || !OCI_CODES.has(code)) throw new Error(`not an OCI error body: ${what}: ${answer.body.subarray(0, 200).toString()}`)
    }
    // a success names what it sent; whole bytes must hash to it
    const named = answer.headers['docker-content-digest']
    if (answer.status === 200 && r.method === 'GET' && typeof named === 'string' && /^sha256:[a-f0-9]{64}$/.test(named) && /\/(manifests|blobs)\//.test(r.path)) {
      const actual = 'sha256:' + createHash('sha256').update(answer.body).digest('hex')
      if (actual !== named && Number(answer.headers['content-length']) === answer.body.length) throw new Error(`bytes do not hash to the digest named: ${what}`)
    }
    // what the rules deny
    if (hdrs.authorization !== alice && answer.status < 300) {
      if (typeof named === 'string' && secretDigests.has(named)) throw new Error(`denied content named: ${what}`)
      for (const s of secrets) if (answer.body.length > 0 && answer.body.includes(s)) throw new Error(`denied content returned: ${what}`)
    }
    const alive = await send(ferry.port, 'GET', '/v2/', {}, undefined)
    if (alive === undefined || (alive.status !== 200 && alive.status !== 401)) throw new Error(`ferry stopped answering /v2/ after ${what}`)
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true }).catch((err: Error) => { problems.push(`${err.message.split('\n').slice(0, 3).join(' ')} — ${String((err.cause as Error | undefined)?.message ?? '')}`) })

  t.same(problems, [], `seed ${SEED}, ${RUNS} runs`)
  t.ok(sent > RUNS / 2, `most generated requests were sent (${sent} of ${RUNS})`)
  const unexpected = ferry.logs().filter(l => l.msg === 'unexpected error' || l.level === 60)
  t.same(unexpected.map(l => `${String(l.path)}: ${JSON.stringify(l.err)}`), [], 'no failure that no layer names')
  t.equal(ferry.proc.child.exitCode, null, 'ferry still runs')
})
