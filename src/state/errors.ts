// How the region state fails: Redis unreachable, or the embedded state's
// files unreadable. Reads that have a remembered answer fall back to it
// instead; what has none throws this.

export class StateError extends Error {
  readonly code = 'STATE_UNAVAILABLE'
  readonly operation: string
  constructor (operation: string, cause: unknown) {
    super(`the region state could not ${operation}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.name = 'StateError'
    this.operation = operation
  }
}
