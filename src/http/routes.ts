// Which endpoint a request path names. Names contain slashes, so the
// endpoint is recognised from the end of the path (distribution-spec
// "Endpoints"). The path is matched raw, never percent-decoded: an encoded
// character can only make the name invalid.

import { REGION_PEER_PATH } from '../common/ferry-protocol.ts'
import { API_PREFIX } from '../console/paths.ts'

export type Endpoint =
  | { readonly kind: 'base' }
  | { readonly kind: 'manifest', readonly name: string, readonly reference: string }
  | { readonly kind: 'blob', readonly name: string, readonly digest: string }
  /** `session`: empty for POST .../blobs/uploads/ (start one). */
  | { readonly kind: 'upload', readonly name: string, readonly session: string }
  | { readonly kind: 'tags', readonly name: string }
  | { readonly kind: 'referrers', readonly name: string, readonly digest: string }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'health' }
  | { readonly kind: 'ready' }
  /** The Docker token flow's endpoint (auth.token). */
  | { readonly kind: 'token' }
  /** Another proxy of the region reads a fill led here (blobs/sources/region-peer.ts). */
  | { readonly kind: 'region-peer-fill', readonly digest: string }
  /** The console's JSON API (console/api.ts). */
  | { readonly kind: 'console-api', readonly path: string }
  /** The console's pages and assets (console/static-files.ts). */
  | { readonly kind: 'console-ui', readonly path: string }
  | { readonly kind: 'unknown' }

const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads(?:\/([^/]*))?$/
const MANIFEST_OR_BLOB = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/
const TAGS = /^\/v2\/(.+)\/tags\/list$/
const REFERRERS = /^\/v2\/(.+)\/referrers\/([^/]+)$/

export function matchEndpoint (path: string): Endpoint {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' }
  if (path.startsWith('/v2/')) {
    let m = UPLOAD.exec(path)
    if (m !== null) return { kind: 'upload', name: m[1]!, session: m[2] ?? '' }
    m = MANIFEST_OR_BLOB.exec(path)
    if (m !== null) {
      return m[2] === 'manifests'
        ? { kind: 'manifest', name: m[1]!, reference: m[3]! }
        : { kind: 'blob', name: m[1]!, digest: m[3]! }
    }
    m = TAGS.exec(path)
    if (m !== null) return { kind: 'tags', name: m[1]! }
    m = REFERRERS.exec(path)
    if (m !== null) return { kind: 'referrers', name: m[1]!, digest: m[2]! }
    if (path === '/v2/_catalog') return { kind: 'catalog' }
    return { kind: 'unknown' }
  }
  if (path.startsWith(REGION_PEER_PATH)) return { kind: 'region-peer-fill', digest: path.slice(REGION_PEER_PATH.length) }
  if (path.startsWith(API_PREFIX)) return { kind: 'console-api', path }
  if (path === '/ui' || path.startsWith('/ui/')) return { kind: 'console-ui', path }
  if (path === '/token') return { kind: 'token' }
  if (path === '/metrics') return { kind: 'metrics' }
  if (path === '/healthz') return { kind: 'health' }
  if (path === '/readyz') return { kind: 'ready' }
  return { kind: 'unknown' }
}
