// Writing responses, and the one place a failure of any layer becomes what a
// client sees: an OCI error code, an HTTP status and the JSON body
// (distribution-spec "Error Codes"). Layers below throw their own errors
// with stable codes; only this file knows statuses for them.
import type { ServerResponse } from 'node:http'
import { FillError } from '../blobs/errors.ts'
import { BodyTooLarge } from '../io/read-bounded.ts'
import { OciError } from '../oci/errors.ts'
import { RegistryError } from '../registry-client/errors.ts'
import { StoreError } from '../store/errors.ts'
import { StateError } from '../state/errors.ts'

export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' }

/** What a client is told of `err`. `expected`: false for a failure no layer names (a bug), which the caller logs. */
export function toOciError (err: unknown): { error: OciError, expected: boolean } {
  if (err instanceof OciError) return { error: err, expected: true }
  if (err instanceof RegistryError) return { error: fromRegistry(err), expected: true }
  if (err instanceof FillError) {
    // this proxy's disk, not the source: 507 says so, and the eviction it set off makes room for a retry
    if (err.code === 'FILL_NO_SPACE') return { error: new OciError('UNAVAILABLE', 507, err.message, { reason: err.reason }, { 'retry-after': '5' }), expected: true }
    if (err.code === 'FILL_STAGING_FAILED') return { error: new OciError('UNAVAILABLE', 503, err.message, { reason: err.reason }), expected: true }
    return { error: new OciError('UNAVAILABLE', 502, err.message, { reason: err.reason, ...err.detail }), expected: true }
  }
  if (err instanceof StoreError) {
    if (err.code === 'STORE_FULL') return { error: new OciError('UNAVAILABLE', 507, 'no space left on the region\'s storage', { operation: err.operation }, { 'retry-after': '5' }), expected: true }
    return { error: new OciError('UNAVAILABLE', 503, 'the region\'s blob store is unavailable', { operation: err.operation, cause: err.message }), expected: true }
  }
  if (err instanceof StateError) {
    return { error: new OciError('UNAVAILABLE', 503, 'the region\'s state is unavailable', { operation: err.operation }), expected: true }
  }
  if (err instanceof BodyTooLarge) return { error: new OciError('UNSUPPORTED', 413, err.message), expected: true }
  return { error: new OciError('UNAVAILABLE', 502, 'internal error'), expected: false }
}

/** Another registry's failure as the client sees it: the upstream's answer, or why there was none. */
function fromRegistry (err: RegistryError): OciError {
  const detail = { upstream: err.registry, ...(err.status !== undefined ? { status: err.status } : {}), ...(err.remoteCode !== undefined ? { code: err.remoteCode } : {}) }
  const reference = err.reference ?? ''
  switch (err.code) {
    case 'REGISTRY_NOT_FOUND':
      if (err.remoteCode === 'NAME_UNKNOWN') return new OciError('NAME_UNKNOWN', 404, 'repository name not known to registry', { ...detail, reference })
      if (err.resource === 'blob') return new OciError('BLOB_UNKNOWN', 404, 'blob unknown to registry', { ...detail, reference })
      if (err.resource === 'manifest') return new OciError('MANIFEST_UNKNOWN', 404, 'manifest unknown', { ...detail, reference })
      return new OciError('NAME_UNKNOWN', 404, 'repository name not known to registry', { ...detail, reference })
    case 'REGISTRY_DENIED': return new OciError('DENIED', 403, 'upstream denied access', detail)
    // with no status, the limit is ferry's own (limits.upstreamFetches), and it says so
    case 'REGISTRY_RATE_LIMITED': return new OciError('TOOMANYREQUESTS', 429, 'too many requests', err.status === undefined ? { ...detail, reason: err.message } : detail, err.retryAfter !== undefined ? { 'retry-after': err.retryAfter } : {})
    case 'REGISTRY_UNAVAILABLE': return new OciError('UNAVAILABLE', 503, 'upstream unavailable', detail)
    case 'REGISTRY_TIMEOUT': return new OciError('UNAVAILABLE', 504, 'upstream timed out', detail)
    case 'REGISTRY_FAILED': return new OciError('UNAVAILABLE', err.status === 504 ? 504 : 502, `upstream answered ${err.status ?? 'an error'}`, detail)
    case 'REGISTRY_UNREACHABLE': return new OciError('UNAVAILABLE', 502, 'upstream unreachable', { ...detail, cause: (err.cause as { code?: string } | undefined)?.code })
    case 'REGISTRY_REJECTED': {
      const code = err.remoteCode
      if (code === 'NAME_INVALID' || code === 'TAG_INVALID' || code === 'DIGEST_INVALID' || code === 'MANIFEST_INVALID') return new OciError(code, 400, 'upstream rejected the request', detail)
      return new OciError('UNAVAILABLE', 502, 'upstream rejected the request', detail)
    }
    case 'REGISTRY_BAD_ANSWER':
      if (err.resource === 'manifest') return new OciError('MANIFEST_INVALID', 502, err.message, detail)
      return new OciError('UNAVAILABLE', 502, err.message, detail)
  }
}

export function errorBody (err: OciError): string {
  return JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: err.detail }] })
}

export function sendError (res: ServerResponse, err: OciError, head: boolean): void {
  if (res.headersSent) {
    // too late for a status: cut the transfer so the client sees it fail
    res.destroy(err)
    return
  }
  const body = errorBody(err)
  res.writeHead(err.status, {
    ...API_VERSION_HEADER,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...err.headers,
  })
  res.end(head ? undefined : body)
}

export function sendBody (res: ServerResponse, status: number, headers: Record<string, string | number>, body: string | Buffer, head: boolean): void {
  res.writeHead(status, { ...API_VERSION_HEADER, 'content-length': Buffer.byteLength(body), ...headers })
  res.end(head ? undefined : body)
}
