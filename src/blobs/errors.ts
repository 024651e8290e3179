// How a fill fails, as values with a stable code (no HTTP status: the edge
// maps them). A fill that fails caches nothing, and every client reading it
// has its transfer cut.

export type FillErrorCode =
  /** The bytes hash to another digest. */
  | 'FILL_DIGEST_MISMATCH'
  /** More or fewer bytes than the source declared, or a size that changed between attempts. */
  | 'FILL_SIZE_MISMATCH'
  /** The source broke off and could not be resumed, or no source could be had. */
  | 'FILL_SOURCE_FAILED'
  /** This proxy's disk is full: the staging file could not take the bytes. Not the source's fault, so not retried. */
  | 'FILL_NO_SPACE'
  /** The staging file could not be written for another reason of this proxy's disk. */
  | 'FILL_STAGING_FAILED'

export class FillError extends Error {
  readonly code: FillErrorCode
  readonly detail: Record<string, unknown> | undefined
  constructor (code: FillErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message)
    this.name = 'FillError'
    this.code = code
    this.detail = detail
  }

  /** The short reason logs and metrics use: upstream, digest_mismatch, size_mismatch, no_space, staging_failed. */
  get reason (): string {
    return this.code === 'FILL_SOURCE_FAILED' ? 'upstream' : this.code.slice('FILL_'.length).toLowerCase()
  }
}

/** What a failure of the staging file is: the disk full, or another fault of this proxy's disk. */
export function stagingError (err: unknown, path: string): FillError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new FillError('FILL_NO_SPACE', 'no space left on this proxy\'s disk', { path })
  return new FillError('FILL_STAGING_FAILED', 'this proxy could not write the blob to its disk', { path, cause: code ?? (err as Error).message })
}
