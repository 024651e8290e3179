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

export class FillError extends Error {
  readonly code: FillErrorCode
  readonly detail: Record<string, unknown> | undefined
  constructor (code: FillErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message)
    this.name = 'FillError'
    this.code = code
    this.detail = detail
  }

  /** The short reason logs and metrics use: digest_mismatch, size_mismatch, source. */
  get reason (): string {
    return this.code === 'FILL_SOURCE_FAILED' ? 'upstream' : this.code.slice('FILL_'.length).toLowerCase()
  }
}
