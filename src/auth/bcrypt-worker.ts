// Runs in a worker thread of the bcrypt pool: one comparison per task.
import bcrypt from 'bcryptjs'

export default function compare ({ password, hash }: { password: string, hash: string }): boolean {
  return bcrypt.compareSync(password, hash)
}
