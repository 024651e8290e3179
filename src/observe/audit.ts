// The audit log: one JSON line per access decision (and so per manifest and
// blob pull), apart from the operational log: who, from where, what, which
// repository and reference, the digest served, allowed or denied, bytes.
// A file rotated at maxBytes (one previous file kept, `.1`), or stdout.
// It never holds a password, a token or an Authorization header: only the
// fields below are written.
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'

export interface AuditRecord {
  readonly who: string
  readonly kind: string
  readonly client: string
  readonly action: string
  readonly repository: string | undefined
  readonly reference: string | undefined
  readonly digest: string | undefined
  readonly decision: 'allow' | 'deny'
  readonly status: number
  readonly bytes: number
}

export class AuditLog {
  private readonly file: string | undefined
  private readonly maxBytes: number
  private out: WriteStream | NodeJS.WriteStream
  private written = 0

  constructor (opts: { file: string | undefined, maxBytes: number }) {
    this.file = opts.file
    this.maxBytes = opts.maxBytes
    if (opts.file !== undefined) mkdirSync(dirname(opts.file), { recursive: true })
    // a restart goes on counting from what the file holds, so it still rotates at maxBytes
    this.written = opts.file !== undefined && existsSync(opts.file) ? statSync(opts.file).size : 0
    this.out = this.open()
  }

  private open (): WriteStream | NodeJS.WriteStream {
    return this.file === undefined ? process.stdout : createWriteStream(this.file, { flags: 'a' })
  }

  record (r: AuditRecord): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n'
    this.out.write(line)
    this.written += Buffer.byteLength(line)
    if (this.file !== undefined && this.written > this.maxBytes) this.rotate()
  }

  private rotate (): void {
    this.written = 0
    const old = this.out as WriteStream
    // lines queued on the old stream still land in the old file, now `.1`
    renameSync(this.file!, `${this.file!}.1`)
    this.out = this.open()
    old.end()
  }

  close (): void {
    if (this.file !== undefined) (this.out as WriteStream).end()
  }
}
