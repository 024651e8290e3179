// The OCI push API, for one client only: another region's replicator,
// holding the replication secret. Blob uploads (monolithic, chunked with
// resume, cross-repository mount) and manifest PUTs; the checks live in
// cache/uploads.ts and ManifestCache.put, not here.
import { decodeBasic, sameSecret } from '../auth/credentials.ts'
import { BodyTooLarge, readBounded } from '../io/read-bounded.ts'
import { BlobUploadInvalid, DigestInvalid, ManifestInvalid, Unauthorized, Unsupported } from '../oci/errors.ts'
import { parseUploadRange, uploadRange } from '../oci/range.ts'
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts'
import { ALL_MANIFEST_TYPES } from '../oci/media-types.ts'
import { parseDigest, parseName, parseReference } from '../oci/reference.ts'
import type { Call, Services } from './handlers.ts'
import { API_VERSION_HEADER } from './respond.ts'

function authorize (s: Services, c: Call): NonNullable<Services['push']> {
  const push = s.push
  const secret = push?.secret()
  if (push === undefined || secret === undefined) throw new Unsupported('ferry is a pull-through cache: pushes are accepted only from a replicator, and none is configured')
  const given = presented(c.req.headers.authorization)
  if (given === undefined || !sameSecret(given, secret)) {
    throw new Unauthorized('pushes need the replication credential', { 'www-authenticate': 'Basic realm="ferry replication"' })
  }
  return push
}

/** The secret in `Bearer <secret>` or the password of `Basic <user:secret>`. */
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

function reply (c: Call, status: number, headers: Record<string, string | number>): void {
  c.res.writeHead(status, { ...API_VERSION_HEADER, 'content-length': 0, ...headers })
  c.res.end()
}

export async function handleUpload (s: Services, c: Call, rawName: string, session: string): Promise<void> {
  const push = authorize(s, c)
  const name = parseName(rawName)
  s.router.route(name, undefined) // a name no upstream serves is refused here, as on pulls
  const base = `/v2/${name}/blobs/uploads/`
  const method = c.req.method
  if (method === 'POST') {
    if (session !== '') throw new Unsupported('POST starts an upload at .../blobs/uploads/')
    const mount = c.query.get('mount')
    if (mount !== null) {
      const d = parseDigest(mount)
      if (await s.blobs.has(d)) {
        c.req.resume()
        reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
        return
      }
    }
    const id = await push.uploads.start()
    const digest = c.query.get('digest')
    if (digest !== null) {
      // monolithic: the whole blob in this request
      const d = parseDigest(digest)
      await push.uploads.append(id, 0, c.req)
      await push.uploads.finish(id, d, (path, size) => s.blobs.adopt(d, path, size))
      reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
      return
    }
    c.req.resume()
    reply(c, 202, { location: base + id, range: '0-0', 'docker-upload-uuid': id })
    return
  }
  if (session === '') throw new Unsupported('no upload session in the path', 404)
  switch (method) {
    case 'PATCH': {
      const cr = c.req.headers['content-range']
      let start: number | undefined
      if (cr !== undefined) {
        const chunk = parseUploadRange(cr)
        if (chunk === undefined) throw new BlobUploadInvalid(`bad Content-Range ${cr.slice(0, 60)}`, 416)
        start = chunk.start
      }
      const offset = await push.uploads.append(session, start, c.req)
      reply(c, 202, { location: base + session, range: uploadRange(offset), 'docker-upload-uuid': session })
      return
    }
    case 'PUT': {
      const digestText = c.query.get('digest')
      if (digestText === null) throw new DigestInvalid('', 'PUT that completes an upload needs ?digest=')
      const d = parseDigest(digestText)
      const length = Number(c.req.headers['content-length'] ?? 0)
      if (length > 0 || c.req.headers['transfer-encoding'] !== undefined) await push.uploads.append(session, undefined, c.req)
      else c.req.resume()
      await push.uploads.finish(session, d, (path, size) => s.blobs.adopt(d, path, size))
      reply(c, 201, { location: `/v2/${name}/blobs/${d.value}`, 'docker-content-digest': d.value })
      return
    }
    case 'GET':
    case 'HEAD': {
      const offset = await push.uploads.offset(session)
      reply(c, 204, { location: base + session, range: uploadRange(offset), 'docker-upload-uuid': session })
      return
    }
    case 'DELETE':
      await push.uploads.cancel(session)
      reply(c, 204, {})
      return
    default:
      throw new Unsupported(`${method ?? ''} is not an upload method`)
  }
}

export async function handleManifestPut (s: Services, c: Call, rawName: string, rawReference: string): Promise<void> {
  authorize(s, c)
  const name = parseName(rawName)
  const reference = parseReference(rawReference)
  const route = s.router.route(name, undefined)
  let body: Buffer
  try {
    body = await readBounded(c.req, MAX_MANIFEST_BYTES)
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new ManifestInvalid(`manifest larger than ${MAX_MANIFEST_BYTES} bytes`, 413)
    throw err
  }
  const type = c.req.headers['content-type']?.split(';', 1)[0]?.trim()
  const m = await s.manifests.put(route, reference.kind === 'digest' ? { digest: reference.digest } : { tag: reference.tag }, type || undefined, body,
    async d => ALL_MANIFEST_TYPES.includes(d.mediaType) ? await s.manifests.has(d.digest) : await s.blobs.has(parseDigest(d.digest)))
  reply(c, 201, { location: `/v2/${name}/manifests/${m.digest}`, 'docker-content-digest': m.digest })
}
