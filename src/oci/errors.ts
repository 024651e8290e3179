// The protocol's own errors: what the distribution spec says a registry
// answers to a request that is wrong or asks for what is not there, with the
// status the spec gives each code ("Error Codes"). Failures of storage, of
// the network and of other registries are not here: each layer throws its
// own, and http/respond.ts maps them (and turns these into the JSON body).

export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'TAG_INVALID'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'

export class OciError extends Error {
  readonly code: OciErrorCode
  readonly status: number
  readonly detail: unknown
  /** Extra response headers the error needs (Retry-After, Allow, ...). */
  readonly headers: Record<string, string>

  constructor (code: OciErrorCode, status: number, message: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'OciError'
    this.code = code
    this.status = status
    this.detail = detail ?? null
    this.headers = headers
  }
}

export class NameInvalid extends OciError {
  constructor (name: string, why: string) { super('NAME_INVALID', 400, 'invalid repository name', { name, reason: why }) }
}
export class NameUnknown extends OciError {
  constructor (name: string, detail?: unknown) { super('NAME_UNKNOWN', 404, 'repository name not known to registry', detail ?? { name }) }
}
export class TagInvalid extends OciError {
  constructor (reference: string) { super('TAG_INVALID', 400, 'invalid tag or reference', { reference }) }
}
export class DigestInvalid extends OciError {
  constructor (digest: string, why: string) { super('DIGEST_INVALID', 400, 'provided digest is invalid', { digest, reason: why }) }
}
export class ManifestUnknown extends OciError {
  constructor (reference: string, detail?: unknown) { super('MANIFEST_UNKNOWN', 404, 'manifest unknown', detail ?? { reference }) }
}
export class ManifestInvalid extends OciError {
  constructor (why: string, status = 400) { super('MANIFEST_INVALID', status, 'manifest invalid', { reason: why }) }
}
export class BlobUnknown extends OciError {
  constructor (digest: string, detail?: unknown) { super('BLOB_UNKNOWN', 404, 'blob unknown to registry', detail ?? { digest }) }
}
export class BlobUploadUnknown extends OciError {
  constructor (session: string) { super('BLOB_UPLOAD_UNKNOWN', 404, 'blob upload unknown to registry', { session: session.slice(0, 80) }) }
}
export class BlobUploadInvalid extends OciError {
  constructor (why: string, status = 400, headers: Record<string, string> = {}) { super('BLOB_UPLOAD_INVALID', status, 'blob upload invalid', { reason: why }, headers) }
}
export class ManifestBlobUnknown extends OciError {
  constructor (digest: string) { super('MANIFEST_BLOB_UNKNOWN', 400, 'manifest references a manifest or blob unknown to registry', { digest }) }
}
export class RangeInvalid extends OciError {
  constructor (range: string, size?: number) {
    super('RANGE_INVALID', 416, 'requested range not satisfiable', { range },
      size === undefined ? {} : { 'content-range': `bytes */${size}` })
  }
}
export class PaginationNumberInvalid extends OciError {
  constructor (n: string) { super('PAGINATION_NUMBER_INVALID', 400, 'invalid number of results requested', { n: n.slice(0, 20) }) }
}
export class Unauthorized extends OciError {
  constructor (message = 'authentication required', headers: Record<string, string> = {}) { super('UNAUTHORIZED', 401, message, null, headers) }
}
export class Denied extends OciError {
  constructor (message = 'requested access to the resource is denied', detail?: unknown) { super('DENIED', 403, message, detail) }
}
export class Unsupported extends OciError {
  constructor (message: string, status = 405) {
    super('UNSUPPORTED', status, message, null, status === 405 ? { allow: 'GET, HEAD' } : {})
  }
}
export class TooManyRequests extends OciError {
  constructor (retryAfter: string | undefined, detail?: unknown) {
    super('TOOMANYREQUESTS', 429, 'too many requests', detail, retryAfter ? { 'retry-after': retryAfter } : {})
  }
}
