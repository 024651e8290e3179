// IPC between the primary and its worker processes. Every message carries
// `ferry` so other cluster traffic (prom-client's) passes untouched.
import type { Claim, FillUpdate } from '../blobs/fill-table.ts'

export type ToPrimary =
  | { readonly ferry: 'claim', readonly id: number, readonly digest: string, readonly path: string }
  | { readonly ferry: 'progress', readonly digest: string, readonly update: FillUpdate }
  | { readonly ferry: 'touch', readonly digests: readonly string[] }
  | { readonly ferry: 'added', readonly digest: string, readonly size: number }
  | { readonly ferry: 'make-room', readonly bytes: number }
  | { readonly ferry: 'metrics', readonly id: number }

export type ToWorker =
  | { readonly ferry: 'claimed', readonly id: number, readonly claim: Claim }
  | { readonly ferry: 'update', readonly digest: string, readonly update: FillUpdate }
  | { readonly ferry: 'metrics', readonly id: number, readonly text: string, readonly contentType: string }

export function isFerryMessage<T extends { ferry: string }> (m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { ferry?: unknown }).ferry === 'string'
}
