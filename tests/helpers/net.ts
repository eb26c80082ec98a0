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
