// The OCI push API (distribution-spec "Push", "Content Management"): blob
// uploads (monolithic, chunked with resume, single-request POST ?digest=,
// cross-repository mount), manifest PUTs by tag or digest, deletes. Hosted
// repositories take them from whoever the access rules let push (writer)
// or delete (admin); proxied repositories are read-only, except to another
// region's replicator, which fills them with what its region cached. The
// checks themselves live in content/writes.ts.
import { decodeBasic, sameSecret } from '../auth/credentials.ts'
import type { Target } from '../content/target.ts'
import { BodyTooLarge, readRequestBounded } from '../io/read-bounded.ts'
import { BlobUploadInvalid, DigestInvalid, ManifestInvalid, Unauthorized, Unsupported } from '../oci/errors.ts'
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts'
import { parseUploadRange, uploadRange } from '../oci/range.ts'
import { parseDigest, parseName, parseReference } from '../oci/reference.ts'
import { referenceOf, type Call, type Services } from './handlers.ts'
import { API_VERSION_HEADER } from './respond.ts'
import { UploadRelay } from './upload-relay.ts'

/** The replication secret in `Bearer <secret>` or as the password of `Basic <user:secret>`. */
function presented (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const [scheme, value] = header.split(' ', 2)
  if (value === undefined) return undefined
  if (scheme?.toLowerCase() === 'bearer') return value
  if (scheme?.toLowerCase() === 'basic') {
    const { raw, password } = decodeBasic(header)
    return raw.includes(':') ? password : undefined
  }
  return undefined
}

/** The request carries this region's replication credential (without access rules, guesses count against the address). */
function fromReplicator (s: Services, c: Call): boolean {
  if (c.principal !== undefined) return c.principal.kind === 'replicator'
  const secret = s.replicationSecret()
  const given = presented(c.req.headers.authorization)
  if (secret === undefined || given === undefined) return false
  const settle = s.logins.admitCheap(c.client, 'replication secret')
  const ok = sameSecret(given, secret)
  settle(ok ? 'ok' : 'failed')
  return ok
}

/**
 * Who may change `target`: for a hosted repository, whoever the access rules
 * let (the gate judged the request before it came here); without access
 * rules, only the replication credential. A proxied repository is the
 * upstream's: read-only, but for another region's replicator. Resolves with
 * whether the change comes from a replicator (and so is not replicated on).
 */
function authorize (s: Services, c: Call, target: Target): boolean {
  const replica = fromReplicator(s, c)
  if (target.kind === 'proxied') {
    if (replica) return true
    // a region that takes replicas asks an unauthenticated pusher for the credential (it may be a replicator)
    if (s.replicationSecret() !== undefined && (c.principal === undefined || c.principal.kind === 'anonymous')) {
      throw new Unauthorized('pushes to a proxied repository need the replication credential', { 'www-authenticate': 'Basic realm="ferry replication"' })
    }
    throw new Unsupported(`${target.name} is a proxied repository (its upstream is the source of truth): read-only`)
  }
  if (replica || s.gate !== undefined) return replica
  throw new Unauthorized('pushes need credentials: this region has no access rules, so only its replication credential may push', { 'www-authenticate': 'Basic realm="ferry"' })
}

function reply (c: Call, status: number, headers: Record<string, string | number>): void {
  c.res.writeHead(status, { ...API_VERSION_HEADER, 'content-length': 0, ...headers })
  c.res.end()
}

export async function handleUpload (s: Services, c: Call, rawName: string, session: string): Promise<void> {
  const name = parseName(rawName)
  const target = s.targets.resolve(name, undefined)
  authorize(s, c, target)
  const base = `/v2/${name}/blobs/uploads/`
  const uploads = s.writes.sessions
  const method = c.req.method
  if (method === 'POST') {
    if (session !== '') throw new Unsupported('POST starts an upload at .../blobs/uploads/')
    const mount = c.query.get('mount')
    const from = c.query.get('from')
    if (mount !== null && from !== null) {
      const d = parseDigest(mount)
      const source = s.targets.resolve(parseName(from), undefined)
      // a mount reads `from`: only from a repository the pusher may pull; otherwise it is an ordinary upload
      const mayRead = s.gate === undefined || c.auth === undefined || s.gate.permits(c.auth, source.name, 'pull')
      if (mayRead && await s.writes.mount(target, d, source.name)) {
        c.req.resume()
        reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
        return
      }
    }
    const id = await uploads.start(target.name)
    await s.uploadOwners?.claim(id)
    const digest = c.query.get('digest')
    if (digest !== null) {
      // the whole blob in this request
      const d = parseDigest(digest)
      try {
        await s.writes.completeUpload(target, id, d, c.req)
      } catch (err) {
        await uploads.cancel(id).catch(() => {})
        throw err
      }
      reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
      return
    }
    c.req.resume()
    reply(c, 202, { location: base + id, range: '0-0', 'docker-upload-uuid': id })
    return
  }
  if (session === '') throw new Unsupported('no upload session in the path', 404)
  if (!await uploads.holds(session) && s.uploadRelay !== undefined && !UploadRelay.relayed(c)) {
    // started on another proxy of the region: answered there
    const owner = await s.uploadOwners?.owner(session)
    if (owner !== undefined) { await s.uploadRelay.forward(c, owner, session); return }
  }
  await uploads.check(session, target.name)
  switch (method) {
    case 'PATCH': {
      const cr = c.req.headers['content-range']
      let start: number | undefined
      if (cr !== undefined) {
        const chunk = parseUploadRange(cr)
        if (chunk === undefined) throw new BlobUploadInvalid(`bad Content-Range ${cr.slice(0, 60)}`, 416)
        start = chunk.start
      }
      const offset = await s.writes.appendUpload(target, session, start, c.req)
      reply(c, 202, { location: base + session, range: uploadRange(offset), 'docker-upload-uuid': session })
      return
    }
    case 'PUT': {
      const digestText = c.query.get('digest')
      if (digestText === null) throw new DigestInvalid('', 'PUT that completes an upload needs ?digest=')
      const d = parseDigest(digestText)
      const length = Number(c.req.headers['content-length'] ?? 0)
      const rest = length > 0 || c.req.headers['transfer-encoding'] !== undefined ? c.req : undefined
      if (rest === undefined) c.req.resume()
      try {
        await s.writes.completeUpload(target, session, d, rest)
      } catch (err) {
        // a refused upload (quota, digest) leaves nothing behind
        if ((err as { code?: string }).code === 'DENIED') await uploads.cancel(session).catch(() => {})
        throw err
      }
      reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
      return
    }
    case 'GET':
    case 'HEAD': {
      const offset = await uploads.offset(session)
      reply(c, 204, { location: base + session, range: uploadRange(offset), 'docker-upload-uuid': session })
      return
    }
    case 'DELETE':
      await uploads.cancel(session)
      reply(c, 204, {})
      return
    default:
      throw new Unsupported(`${method ?? ''} is not an upload method`)
  }
}

export async function handleManifestPut (s: Services, c: Call, rawName: string, rawReference: string): Promise<void> {
  const name = parseName(rawName)
  const target = s.targets.resolve(name, undefined)
  const replica = authorize(s, c, target)
  const reference = parseReference(rawReference)
  let body: Buffer
  try {
    body = await readRequestBounded(c.req, c.res, MAX_MANIFEST_BYTES)
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new ManifestInvalid(`manifest larger than ${MAX_MANIFEST_BYTES} bytes`, 413)
    throw err
  }
  const type = c.req.headers['content-type']?.split(';', 1)[0]?.trim()
  const pushed = await s.writes.putManifest(target, reference, type || undefined, body, replica)
  s.webhooks?.emit('push', referenceOf(target.name, rawReference), { repository: target.name, reference: rawReference, digest: pushed.digest, mediaType: type || undefined, who: c.principal?.name ?? 'anonymous', replica })
  reply(c, 201, {
    location: `/v2/${name}/manifests/${pushed.digest}`,
    'docker-content-digest': pushed.digest,
    ...(pushed.subject !== undefined ? { 'oci-subject': pushed.subject } : {}),
  })
}

/** DELETE of a manifest (by digest), a tag, or a blob of a repository. */
export async function handleDelete (s: Services, c: Call, kind: 'manifest' | 'blob', rawName: string, rawReference: string): Promise<void> {
  const name = parseName(rawName)
  const target = s.targets.resolve(name, undefined)
  const replica = authorize(s, c, target)
  if (kind === 'blob') await s.writes.deleteBlob(target, parseDigest(rawReference))
  else await s.writes.deleteManifest(target, parseReference(rawReference), replica)
  s.webhooks?.emit('delete', referenceOf(target.name, rawReference), { repository: target.name, reference: rawReference, kind, who: c.principal?.name ?? 'anonymous', replica })
  reply(c, 202, {})
}
