// Blobs as Google Cloud Storage objects: <prefix>blobs/<algorithm>/<xx>/<hex>.
// Uploads are resumable uploads streamed from the verified staging file; GCS
// makes the object visible only when the upload is finalized, so it is
// never half-written. Reads are ranged media downloads. Credentials come
// from Google's application default credentials.
import { stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { Storage, type Bucket } from '@google-cloud/storage'
import { StoreError } from './errors.ts'
import type { Digest } from '../oci/reference.ts'
import type { BlobInfo, BlobStore, OpenBlob } from './blob-store.ts'
import { digestOfKey, remoteBlob, uploadThenRemove } from './remote-blob.ts'

export interface GcsStoreOptions {
  readonly bucket: string
  readonly prefix: string
  /** Another endpoint than Google's (a test server, a private gateway). */
  readonly apiEndpoint: string | undefined
  readonly projectId: string | undefined
}

export class GcsBlobStore implements BlobStore {
  private readonly bucket: Bucket
  private readonly prefix: string

  constructor (opts: GcsStoreOptions) {
    this.prefix = opts.prefix
    const storage = new Storage({
      ...(opts.apiEndpoint !== undefined ? { apiEndpoint: opts.apiEndpoint } : {}),
      ...(opts.projectId !== undefined ? { projectId: opts.projectId } : {}),
      // a store that is down must turn into a prompt error, not a long retry loop
      retryOptions: { autoRetry: true, maxRetries: 1, totalTimeout: 30 },
    })
    this.bucket = storage.bucket(opts.bucket)
  }

  private key (digest: Digest): string {
    return `${this.prefix}blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const [meta] = await this.bucket.file(this.key(digest)).getMetadata()
      return { size: Number(meta.size ?? 0), modifiedAt: meta.updated !== undefined ? Date.parse(meta.updated) : Date.now() }
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined
      throw new StoreError('stat', err)
    }
  }

  async probe (): Promise<void> {
    let exists: boolean
    try {
      [exists] = await this.bucket.exists()
    } catch (err) {
      throw new StoreError(`use bucket ${this.bucket.name}`, err)
    }
    if (!exists) throw new StoreError(`use bucket ${this.bucket.name}`, Object.assign(new Error('the bucket does not exist'), { code: 'NoSuchBucket' }))
  }

  async open (digest: Digest): Promise<OpenBlob | undefined> {
    const info = await this.stat(digest)
    if (info === undefined) return undefined
    const file = this.bucket.file(this.key(digest))
    return remoteBlob(info.size, async (start, end) => {
      // the digest is the integrity check (verified on every fill); GCS's own hashes do not apply to ranges
      const stream = file.createReadStream({ start, end, validation: false, decompress: false })
      // surface a failed request as the store's error, not the client's
      stream.on('error', () => {})
      return mapErrors(stream)
    })
  }

  async commitFile (digest: Digest, localPath: string): Promise<void> {
    await uploadThenRemove(() => this.putFile(digest, localPath), localPath)
  }

  async putFile (digest: Digest, localPath: string): Promise<void> {
    try {
      const { size } = await stat(localPath)
      await this.bucket.upload(localPath, {
        destination: this.key(digest),
        resumable: true,
        validation: false,
        metadata: { contentType: 'application/octet-stream', contentLength: size },
      })
    } catch (err) {
      throw new StoreError('write', err)
    }
  }

  async delete (digest: Digest): Promise<void> {
    try {
      await this.bucket.file(this.key(digest)).delete({ ignoreNotFound: true })
    } catch (err) {
      throw new StoreError('delete', err)
    }
  }

  async * list (): AsyncIterable<Digest> {
    let pageToken: string | undefined
    do {
      let files, next
      try {
        [files, next] = await this.bucket.getFiles({ prefix: `${this.prefix}blobs/`, autoPaginate: false, maxResults: 1000, ...(pageToken !== undefined ? { pageToken } : {}) })
      } catch (err) {
        throw new StoreError('list', err)
      }
      for (const f of files) {
        const d = digestOfKey(f.name, this.prefix)
        if (d !== undefined) yield d
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken
    } while (pageToken !== undefined)
  }
}

/** The download stream, with its failures turned into StoreUnavailable. */
async function mapErrors (stream: Readable): Promise<Readable> {
  return Readable.from((async function * () {
    try {
      for await (const chunk of stream) yield chunk as Buffer
    } catch (err) {
      throw new StoreError('read', err)
    }
  })(), { objectMode: false })
}
