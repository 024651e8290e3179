// Progress of a long command: on a terminal a bar (cli-progress: images
// done, bytes, rate, ETA), redrawn in place; elsewhere (a CI log, a pipe)
// plain JSON lines, one per event worth a line, on stderr so stdout keeps
// the machine-readable report.
import cliProgress from 'cli-progress'

export interface Progress {
  start (total: number): void
  /** One more item (an image, a part) done. */
  imageDone (): void
  /** Bytes moved. */
  bytes (n: number): void
  /** Bytes a dry run would move. */
  planned (n: number): void
  /** A line worth keeping (shown above the bar on a terminal). */
  log (fields: Record<string, unknown>, msg: string): void
  stop (): void
}

export function progressFor (stream: NodeJS.WriteStream, unit: string): Progress {
  return stream.isTTY === true ? new BarProgress(stream, unit) : new LineProgress(stream)
}

class LineProgress implements Progress {
  private readonly out: NodeJS.WritableStream
  constructor (out: NodeJS.WritableStream) { this.out = out }
  start (): void {}
  imageDone (): void {}
  bytes (): void {}
  planned (): void {}
  log (fields: Record<string, unknown>, msg: string): void {
    this.out.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n')
  }

  stop (): void {}
}

class BarProgress implements Progress {
  private readonly bar: cliProgress.SingleBar
  private readonly out: NodeJS.WriteStream
  private moved = 0
  private readonly started = Date.now()

  constructor (out: NodeJS.WriteStream, unit: string) {
    this.out = out
    this.bar = new cliProgress.SingleBar({
      stream: out,
      format: `{bar} {value}/{total} ${unit} | {moved} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
    }, cliProgress.Presets.shades_classic)
  }

  start (total: number): void { this.bar.start(total, 0, this.payload()) }
  imageDone (): void { this.bar.increment(1, this.payload()) }
  bytes (n: number): void { this.moved += n; this.bar.update(this.payload()) }
  planned (n: number): void { this.bytes(n) }
  log (fields: Record<string, unknown>, msg: string): void {
    // above the bar, which is drawn again below it
    this.out.write(`\r\x1b[K${msg} ${Object.entries(fields).map(([k, v]) => `${k}=${String(v)}`).join(' ')}\n`)
    this.bar.update(this.payload())
  }

  stop (): void { this.bar.stop() }

  private payload (): { moved: string, rate: string } {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000)
    return { moved: human(this.moved), rate: human(this.moved / seconds) }
  }
}

export function human (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}
