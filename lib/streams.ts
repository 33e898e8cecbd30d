import type { Writable } from 'node:stream'

/**
 * Resolves when a stream that refused a write (write() returned false) can take more, or when it closed (the client
 * went away): a producer reading rows from a cursor waits on this instead of buffering the whole result in memory.
 */
export const drained = (stream: Writable) =>
  new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })
