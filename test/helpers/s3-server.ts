// A real S3 server for tests: s3rver, in the test's own process, storing
// objects under `dir`. Stop it with close(); start it again on the same
// port with startS3Server(dir, port) to play an outage.
import S3rver from 's3rver'

export interface S3Server {
  readonly endpoint: string
  readonly port: number
  readonly bucket: string
  close (): Promise<void>
  /** Stop at once, as a crash: open connections are cut, not drained. */
  crash (): Promise<void>
  /** What it was asked so far (method and path), oldest first. */
  requests (): { method: string, path: string }[]
}

export const S3_BUCKET = 'ferry-test'

export async function startS3Server (dir: string, port = 0): Promise<S3Server> {
  // s3rver accepts any key pair; the AWS SDK's default chain reads these
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER'
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER'
  const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dir, configureBuckets: [{ name: S3_BUCKET }] })
  const { port: bound } = await server.run()
  const asked: { method: string, path: string }[] = []
  ;(server as unknown as { httpServer?: import('node:http').Server }).httpServer?.on('request', (req: import('node:http').IncomingMessage) => { asked.push({ method: req.method ?? '', path: req.url ?? '' }) })
  const crash = async (): Promise<void> => {
    const closing = server.close()
    ;(server as unknown as { httpServer?: import('node:http').Server }).httpServer?.closeAllConnections()
    await closing
  }
  return { endpoint: `http://127.0.0.1:${bound}`, port: bound, bucket: S3_BUCKET, close: () => server.close(), crash, requests: () => asked }
}
