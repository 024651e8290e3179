// What the object-store implementations (S3, GCS) share: an open blob whose
// bodies are ranged reads, and a commit that is an upload of the staging
// file followed by its removal.
import { unlink } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { streamBody } from '../io/body.ts'
import { parseDigest, type Digest } from '../oci/reference.ts'
import type { OpenBlob } from './blob-store.ts'

/** `read(start, end)` fetches the inclusive byte range; nothing is fetched until a body is written. */
export function remoteBlob (size: number, read: (start: number, end: number) => Promise<Readable>): OpenBlob {
  return {
    size,
    body: range => {
      const start = range?.start ?? 0
      const end = range?.end ?? size - 1
      return streamBody(async () => size === 0 ? Readable.from([]) : await read(start, end), end - start + 1)
    },
    close: () => {},
  }
}

export async function uploadThenRemove (upload: () => Promise<void>, localPath: string): Promise<void> {
  try {
    await upload()
  } finally {
    await unlink(localPath).catch(() => {})
  }
}

/** <prefix>blobs/<alg>/<xx>/<hex> back to a digest; anything else is not a blob. */
export function digestOfKey (key: string, prefix: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/[a-f0-9]{2}\/([a-f0-9]+)$/.exec(key.slice(prefix.length))
  if (!key.startsWith(prefix) || m === null) return undefined
  try { return parseDigest(`${m[1]}:${m[2]}`) } catch { return undefined }
}
