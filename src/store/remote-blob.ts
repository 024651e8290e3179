// What the object-store implementations (S3, GCS) share: an open blob whose
// bodies are ranged reads, and a commit that is an upload of the staging
// file followed by its removal.
import { unlink } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { streamBody } from '../io/body.ts'
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
