// ferry passwd NAME: a bcrypt line for the htpasswd file or the region
// file's auth.users, so no other tool is needed. The password is read from
// the terminal (twice, not echoed) or from standard input (its first line).
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import bcrypt from 'bcryptjs'
import { defineCommand, UsageError } from './command.ts'

const usage = `usage: ferry passwd NAME [--cost N] < password

Print "NAME:<bcrypt hash>" for an htpasswd file (or the hash alone, with
--hash-only, for auth.users in a region file). The password is asked on the
terminal, or read from the first line of standard input.

  --cost N            bcrypt cost, 10 to 14 (default 10)
  --hash-only         print only the hash`

async function fromTerminal (): Promise<string> {
  const muted = new Writable({ write (_chunk, _enc, cb) { cb() } })
  const ask = async (prompt: string): Promise<string> => {
    process.stderr.write(prompt)
    const rl = createInterface({ input: process.stdin, output: muted, terminal: true })
    try {
      return await new Promise<string>(resolve => rl.once('line', resolve))
    } finally {
      rl.close()
      process.stderr.write('\n')
    }
  }
  const first = await ask('Password: ')
  const again = await ask('Again: ')
  if (first !== again) throw new UsageError('ferry passwd: the two passwords differ', usage)
  return first
}

async function fromStdin (): Promise<string> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of rl) { rl.close(); return line }
  return ''
}

export const passwdCommand = defineCommand({
  name: 'passwd',
  summary: 'print a bcrypt password line for a user',
  usage,
  options: { cost: { type: 'string' }, 'hash-only': { type: 'boolean' } },
  async run (values, positionals) {
    const [name, ...rest] = positionals
    if (name === undefined || rest.length > 0 || !/^[^:\s]{1,128}$/.test(name)) throw new UsageError('ferry passwd: one NAME (no ":" or spaces)', usage)
    const cost = values.cost === undefined ? 10 : Number(values.cost)
    if (!Number.isInteger(cost) || cost < 10 || cost > 14) throw new UsageError('ferry passwd: --cost takes a whole number from 10 to 14', usage)
    const password = process.stdin.isTTY ? await fromTerminal() : await fromStdin()
    if (password.length === 0) throw new UsageError('ferry passwd: an empty password', usage)
    const hash = await bcrypt.hash(password, cost)
    console.log(values['hash-only'] === true ? hash : `${name}:${hash}`)
    return 0
  },
})
