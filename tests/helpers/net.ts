import { createServer } from 'node:net'

/** A TCP port free on 127.0.0.1 right now (for registries, sshd, PostgreSQL, REST servers in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no free port'))))
    })
  })
}

/**
 * A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes each at once):
 * point a server's address at it to prove that a command opens no connection (`count()` stays 0),
 * or that it does.
 */
export async function connectionCounter(): Promise<{ port: number; count(): number; close(): Promise<void> }> {
  let accepted = 0
  const server = createServer((socket) => {
    accepted++
    socket.destroy()
  })
  await new Promise<void>((resolveListen, reject) => {
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => resolveListen())
  })
  const address = server.address()
  if (!address || typeof address !== 'object') throw new Error('connectionCounter: no address')
  return {
    port: address.port,
    count: () => accepted,
    close: () => new Promise<void>((resolveClose) => server.close(() => resolveClose())),
  }
}
