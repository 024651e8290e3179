// What can go wrong talking to another registry (an upstream, a peer
// region, another proxy of the region), as values with a stable code and no
// HTTP status of ferry's own: the HTTP edge decides what a client sees
// (http/respond.ts). `status` is the other registry's, when it answered.

export type RegistryErrorCode =
  /** No connection, or it broke. */
  | 'REGISTRY_UNREACHABLE'
  /** Connecting, the headers or the next body bytes took too long. */
  | 'REGISTRY_TIMEOUT'
  /** 401 or 403 with ferry's credentials, or its token service refused them. */
  | 'REGISTRY_DENIED'
  /** 404: the blob, manifest or repository is not there. */
  | 'REGISTRY_NOT_FOUND'
  /** 429. */
  | 'REGISTRY_RATE_LIMITED'
  /** 503. */
  | 'REGISTRY_UNAVAILABLE'
  /** 500, 502, 504. */
  | 'REGISTRY_FAILED'
  /** 400 with an OCI code: the request itself was wrong (a bad name, tag or digest). */
  | 'REGISTRY_REJECTED'
  /** An answer ferry cannot use: an unexpected status, a bad redirect, a body that is not what it should be. */
  | 'REGISTRY_BAD_ANSWER'

/** What was asked for, so a 404 says which kind of thing is unknown. */
export type RegistryResource = 'blob' | 'manifest' | 'tags' | 'referrers' | 'upload' | 'token' | 'base'

export class RegistryError extends Error {
  readonly code: RegistryErrorCode
  /** The other registry's name (an upstream's or a peer's). */
  readonly registry: string
  readonly resource: RegistryResource | undefined
  readonly reference: string | undefined
  /** Its HTTP status, when it answered. */
  readonly status: number | undefined
  /** The OCI error code in its answer, when it sent one. */
  readonly remoteCode: string | undefined
  /** Its Retry-After, for REGISTRY_RATE_LIMITED. */
  readonly retryAfter: string | undefined

  constructor (code: RegistryErrorCode, message: string, opts: {
    registry: string, resource?: RegistryResource, reference?: string, status?: number, remoteCode?: string, retryAfter?: string, cause?: unknown
  }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'RegistryError'
    this.code = code
    this.registry = opts.registry
    this.resource = opts.resource
    this.reference = opts.reference
    this.status = opts.status
    this.remoteCode = opts.remoteCode
    this.retryAfter = opts.retryAfter
  }

  /** The registry is down or overloaded, not refusing: worth another try later, and a reason to serve what is cached. */
  get transient (): boolean {
    return this.code === 'REGISTRY_UNREACHABLE' || this.code === 'REGISTRY_TIMEOUT' || this.code === 'REGISTRY_RATE_LIMITED' ||
      this.code === 'REGISTRY_UNAVAILABLE' || this.code === 'REGISTRY_FAILED'
  }
}

export function isRegistryError (err: unknown): err is RegistryError {
  return err instanceof RegistryError
}
