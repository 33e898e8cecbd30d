// Applies our fixes to installed dependencies (run by `npm install` / `npm ci` as the postinstall step). Each fix is a
// set of exact text replacements, applied once (a marker makes it idempotent). When a dependency changes so that the
// text is no longer found, this says so and leaves the file alone: the tests that prove the fix (see README.md here)
// then fail, which is the prompt to re-check whether upstream fixed it.
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const MARKER = 'wa-platform patch: closed socket'
export const TYPES_MARKER = 'wa-platform patch: array types fetch'

/**
 * postgres.js 3.4.9 writes to a connection whose socket is already gone (porsager/postgres#1066, #1154, #1208; fixes
 * proposed in #1168, #1209, none released). When the server goes away under a transaction, `sql.begin` sends its own
 * ROLLBACK on the dead connection; the write is deferred to a setImmediate that dereferences the null socket and throws
 * where no caller can catch it, killing the process. Separately, teardown clears the deferred-write timer without
 * resetting it, so a connection that died with a write buffered never flushes again after it reconnects (every query
 * routed to it waits for connect_timeout); the query running when a connection died is not forgotten; and a pool asked
 * to end while a connection waits to reconnect never finishes ending.
 */
const postgresClosedSocket = {
  name: 'postgres: never write to a closed socket',
  marker: MARKER,
  files: ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'].map((f) => path.join('node_modules/postgres', f)),
  replacements: [
    {
      // A query sent to a connection that has no socket (closed, not yet reconnected) fails like any query on a lost
      // connection. Returning true keeps the connection where it is (closed or connecting) instead of marking it full.
      from: `    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))
`,
      to: `    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))

    if (!socket) // ${MARKER} (see ops/patches/README.md)
      return (queryError(q, Errors.connection('CONNECTION_CLOSED', options)), true)
`,
    },
    {
      // Defence in depth: a deferred write that finds the socket gone drops its bytes and fails what waited for them.
      from: `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)
`,
      to: `  function nextWrite(fn) {
    if (!socket) { // ${MARKER}
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)
`,
    },
    {
      // terminate(): forget what was buffered for the old socket.
      from: `    clearImmediate(nextWriteTimer)
    if (socket) {`,
      to: `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null // ${MARKER}
    if (socket) {`,
    },
    {
      // closed(): same, so the next socket's startup message is flushed.
      from: `    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`,
      to: `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null // ${MARKER}
    socket.removeListener('data', data)`,
    },
    {
      // closed(): the query that was running when the connection died has been failed just above; forget it, or the
      // first ReadyForQuery after reconnecting fails the next query with the dead connection's error (e.g. 57P01).
      from: `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
`,
      to: `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    query = errorResponse = null // ${MARKER}
`,
    },
    {
      // closed(): a connection asked to end while it waited to reconnect for a queued query never finished ending
      // when that reconnect failed (sql.end() without a timeout hung). Once no queued query needs it, it is done.
      from: `    onclose(connection, Errors.connection('CONNECTION_CLOSED', options, socket))
  }`,
      to: `    onclose(connection, Errors.connection('CONNECTION_CLOSED', options, socket))
    ended && !initial && terminate() // ${MARKER}
  }`,
    },
  ],
}

/**
 * postgres.js 3.4.9 fetches the array types as the first statement of every new connection and drops that promise
 * (porsager/postgres#1192, #1205, #1223, open): when the connection dies during that fetch (a database shutting down
 * while the pool reconnects), the rejection is unhandled and Node kills the process. The connection's own error
 * handling already fails whatever waited on it, and the next connection fetches the types again, so the rejection
 * only needs a handler.
 */
const postgresTypesFetch = {
  name: 'postgres: handle a failed array types fetch',
  marker: TYPES_MARKER,
  files: postgresClosedSocket.files,
  replacements: [
    {
      from: `        return fetchArrayTypes()
`,
      to: `        return fetchArrayTypes().catch(() => {}) // ${TYPES_MARKER} (see ops/patches/README.md)
`,
    },
  ],
}

const PATCHES = [postgresClosedSocket, postgresTypesFetch]

async function applyPatch(patch) {
  let ok = true
  for (const rel of patch.files) {
    const file = path.join(ROOT, rel)
    let text
    try {
      text = await readFile(file, 'utf8')
    } catch {
      continue // that build of the package is not installed
    }
    if (text.includes(patch.marker)) continue
    let next = text
    for (const r of patch.replacements) {
      if (next.split(r.from).length !== 2) {
        process.stderr.write(`ops/patches: ${patch.name}: ${rel} does not contain the expected code; not patched (was the package upgraded? see ops/patches/README.md)\n`)
        ok = false
        next = null
        break
      }
      next = next.replace(r.from, r.to)
    }
    if (next) await writeFile(file, next)
  }
  return ok
}

let allOk = true
for (const patch of PATCHES) allOk = (await applyPatch(patch)) && allOk
// Never fail the install: the boot warning and the tests say loudly enough that a fix is missing.
if (!allOk) process.exitCode = 0
