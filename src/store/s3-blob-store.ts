// Blobs as S3 objects: <prefix>blobs/<algorithm>/<first two hex>/<hex>.
// Uploads are multipart (lib-storage) from the verified staging file, so an
// object appears only when CompleteMultipartUpload succeeds: never
// half-written. Reads are ranged GETs streamed to the client. Credentials
// come from the AWS default chain (environment, profile, instance role).
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { StoreError } from './errors.ts'
import type { Digest } from '../oci/reference.ts'
import type { BlobInfo, BlobStore, OpenBlob } from './blob-store.ts'
import { digestOfKey, remoteBlob, uploadThenRemove } from './remote-blob.ts'

export interface S3StoreOptions {
  readonly bucket: string
  readonly region: string | undefined
  readonly endpoint: string | undefined
  readonly prefix: string
  readonly forcePathStyle: boolean
}

// lib-storage holds each part in memory while it uploads: parts of 5 MiB
// (S3's least), two at a time, at most four uploads at once bound that to
// 40 MiB per proxy whatever the blob size. Parts grow only for blobs past
// 45 GiB, to stay under S3's 10,000 parts.
const MIN_PART = 5 * 1024 * 1024
const PARTS_IN_FLIGHT = 2
const UPLOADS_AT_ONCE = 4

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client
  private readonly bucket: string
  private readonly prefix: string
  private uploading = 0
  private readonly waiting: (() => void)[] = []

  constructor (opts: S3StoreOptions) {
    this.bucket = opts.bucket
    this.prefix = opts.prefix
    this.client = new S3Client({
      region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      // a store that is down must turn into a prompt error, not a long retry loop
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 3000, requestTimeout: 30_000 },
    })
  }

  private key (digest: Digest): string {
    return `${this.prefix}blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(digest) }))
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() ?? Date.now() }
    } catch (err) {
      if (notFound(err)) return undefined
      throw new StoreError('stat', err)
    }
  }

  async open (digest: Digest): Promise<OpenBlob | undefined> {
    const info = await this.stat(digest)
    if (info === undefined) return undefined
    const key = this.key(digest)
    return remoteBlob(info.size, async (start, end) => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end}` }))
        return res.Body as Readable
      } catch (err) {
        throw new StoreError('read', err)
      }
    })
  }

  async commitFile (digest: Digest, localPath: string): Promise<void> {
    await uploadThenRemove(() => this.putFile(digest, localPath), localPath)
  }

  async putFile (digest: Digest, localPath: string): Promise<void> {
    while (this.uploading >= UPLOADS_AT_ONCE) await new Promise<void>(resolve => this.waiting.push(resolve))
    this.uploading++
    try {
      await this.upload(digest, localPath)
    } finally {
      this.uploading--
      this.waiting.shift()?.()
    }
  }

  private async upload (digest: Digest, localPath: string): Promise<void> {
    try {
      const { size } = await stat(localPath)
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: this.key(digest), Body: createReadStream(localPath), ContentLength: size, ContentType: 'application/octet-stream' },
        partSize: Math.max(MIN_PART, Math.ceil(size / 9000)),
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      })
      await upload.done()
    } catch (err) {
      throw new StoreError('write', err)
    }
  }

  async delete (digest: Digest): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(digest) }))
    } catch (err) {
      if (!notFound(err)) throw new StoreError('delete', err)
    }
  }

  async probe (): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))
    } catch (err) {
      // HeadBucket answers a missing bucket with a bare 404: say what it means
      if (notFound(err)) throw new StoreError(`use bucket ${this.bucket}`, Object.assign(new Error('the bucket does not exist'), { code: 'NoSuchBucket' }))
      throw new StoreError(`use bucket ${this.bucket}`, err)
    }
  }

  async * list (): AsyncIterable<Digest> {
    let token: string | undefined
    do {
      let page
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}blobs/`, ContinuationToken: token }))
      } catch (err) {
        throw new StoreError('list', err)
      }
      for (const o of page.Contents ?? []) {
        const d = digestOfKey(o.Key ?? '', this.prefix)
        if (d !== undefined) yield d
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  close (): void { this.client.destroy() }
}

function notFound (err: unknown): boolean {
  const e = err as { name?: string, $metadata?: { httpStatusCode?: number } }
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404
}
