// How a blob store fails, the same way for every backend (the contract suite
// checks it): absent blobs are not errors (stat and open answer undefined);
// anything else the store could not do is a StoreError. The bytes are not
// lost, only unreachable now.

export type StoreErrorCode = 'STORE_UNAVAILABLE' | 'STORE_FULL'

export class StoreError extends Error {
  readonly code: StoreErrorCode
  /** What the store was asked to do: stat, open, read, commit, put, delete, list. */
  readonly operation: string
  constructor (operation: string, cause: unknown) {
    super(`the blob store could not ${operation}: ${describeCause(cause)}`, { cause })
    this.name = 'StoreError'
    const code = (cause as { code?: unknown } | undefined)?.code
    this.code = code === 'ENOSPC' || code === 'EDQUOT' ? 'STORE_FULL' : 'STORE_UNAVAILABLE'
    this.operation = operation
  }
}

/** The most telling short text of an SDK's or the OS's error: its code and message. */
export function describeCause (cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause)
  const code = (cause as { code?: unknown, Code?: unknown }).code ?? (cause as { Code?: unknown }).Code ?? cause.name
  return typeof code === 'string' && code !== 'Error' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message
}
