#!/usr/bin/env node
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ var __webpack_modules__ = ({

/***/ 785:
/***/ ((__unused_webpack_module, exports) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
// This is an empty module that is served up when outside of a workerd environment
// See the `exports` field in package.json
exports["default"] = {};
//# sourceMappingURL=empty.js.map

/***/ }),

/***/ 6122:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



//Parse method copied from https://github.com/brianc/node-postgres
//Copyright (c) 2010-2014 Brian Carlson (brian.m.carlson@gmail.com)
//MIT License

//parses a connection string
function parse(str, options = {}) {
  //unix socket
  if (str.charAt(0) === '/') {
    const config = str.split(' ')
    return { host: config[0], database: config[1] }
  }

  // Check for empty host in URL

  const config = Object.create(null)
  let result
  let dummyHost = false
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(str)) {
    // Ensure spaces are encoded as %20
    str = encodeURI(str).replace(/%25(\d\d)/g, '%$1')
  }

  try {
    try {
      result = new URL(str, 'postgres://base')
    } catch (e) {
      // The URL is invalid so try again with a dummy host
      result = new URL(str.replace('@/', '@___DUMMY___/'), 'postgres://base')
      dummyHost = true
    }
  } catch (err) {
    // Remove the input from the error message to avoid leaking sensitive information
    err.input && (err.input = '*****REDACTED*****')
    throw err
  }

  // We'd like to use Object.fromEntries() here but Node.js 10 does not support it
  for (const entry of result.searchParams.entries()) {
    config[entry[0]] = entry[1]
  }

  config.user = config.user || decodeURIComponent(result.username)
  config.password = config.password || decodeURIComponent(result.password)

  if (result.protocol == 'socket:') {
    config.host = decodeURI(result.pathname)
    config.database = result.searchParams.get('db')
    config.client_encoding = result.searchParams.get('encoding')
    return config
  }
  const hostname = (dummyHost ? '' : result.hostname).replace(/^\[(.+)\]$/, '$1')
  if (!config.host) {
    // Only set the host if there is no equivalent query param.
    config.host = decodeURIComponent(hostname)
  } else if (hostname && /^%2f/i.test(hostname)) {
    // Only prepend the hostname to the pathname if it is not a URL encoded Unix socket host.
    result.pathname = hostname + result.pathname
  }
  if (!config.port) {
    // Only set the port if there is no equivalent query param.
    config.port = result.port
  }

  const pathname = result.pathname.slice(1) || null
  config.database = pathname ? decodeURI(pathname) : null

  if (config.ssl === 'true' || config.ssl === '1') {
    config.ssl = true
  }

  if (config.ssl === '0') {
    config.ssl = false
  }

  if (config.sslcert || config.sslkey || config.sslrootcert || config.sslmode) {
    config.ssl = {}
  }

  // sslnegotiation=direct implies SSL is in use (libpq requires sslmode>=require),
  // so enable SSL if the connection string did not otherwise configure it.
  if (config.sslnegotiation === 'direct' && config.ssl === undefined) {
    config.ssl = true
  }

  // Only try to load fs if we expect to read from the disk
  const fs = config.sslcert || config.sslkey || config.sslrootcert ? __nccwpck_require__(9896) : null

  if (config.sslcert) {
    config.ssl.cert = fs.readFileSync(config.sslcert).toString()
  }

  if (config.sslkey) {
    config.ssl.key = fs.readFileSync(config.sslkey).toString()
  }

  if (config.sslrootcert) {
    config.ssl.ca = fs.readFileSync(config.sslrootcert).toString()
  }

  if (options.useLibpqCompat && config.uselibpqcompat) {
    throw new Error('Both useLibpqCompat and uselibpqcompat are set. Please use only one of them.')
  }

  if (config.uselibpqcompat === 'true' || options.useLibpqCompat) {
    switch (config.sslmode) {
      case 'disable': {
        config.ssl = false
        break
      }
      case 'prefer': {
        config.ssl.rejectUnauthorized = false
        break
      }
      case 'require': {
        if (config.sslrootcert) {
          // If a root CA is specified, behavior of `sslmode=require` will be the same as that of `verify-ca`
          config.ssl.checkServerIdentity = function () {}
        } else {
          config.ssl.rejectUnauthorized = false
        }
        break
      }
      case 'verify-ca': {
        if (!config.ssl.ca) {
          throw new Error(
            'SECURITY WARNING: Using sslmode=verify-ca requires specifying a CA with sslrootcert. If a public CA is used, verify-ca allows connections to a server that somebody else may have registered with the CA, making you vulnerable to Man-in-the-Middle attacks. Either specify a custom CA certificate with sslrootcert parameter or use sslmode=verify-full for proper security.'
          )
        }
        config.ssl.checkServerIdentity = function () {}
        break
      }
      case 'verify-full': {
        break
      }
    }
  } else {
    switch (config.sslmode) {
      case 'disable': {
        config.ssl = false
        break
      }
      case 'prefer':
      case 'require':
      case 'verify-ca':
      case 'verify-full': {
        if (config.sslmode !== 'verify-full') {
          deprecatedSslModeWarning(config.sslmode)
        }
        break
      }
      case 'no-verify': {
        config.ssl.rejectUnauthorized = false
        break
      }
    }
  }

  return config
}

// convert pg-connection-string ssl config to a ClientConfig.ConnectionOptions
function toConnectionOptions(sslConfig) {
  const connectionOptions = Object.entries(sslConfig).reduce((c, [key, value]) => {
    // we explicitly check for undefined and null instead of `if (value)` because some
    // options accept falsy values. Example: `ssl.rejectUnauthorized = false`
    if (value !== undefined && value !== null) {
      c[key] = value
    }

    return c
  }, Object.create(null))

  return connectionOptions
}

// convert pg-connection-string config to a ClientConfig
function toClientConfig(config) {
  const poolConfig = Object.entries(config).reduce((c, [key, value]) => {
    if (key === 'ssl') {
      const sslConfig = value

      if (typeof sslConfig === 'boolean') {
        c[key] = sslConfig
      }

      if (typeof sslConfig === 'object') {
        c[key] = toConnectionOptions(sslConfig)
      }
    } else if (value !== undefined && value !== null) {
      if (key === 'port') {
        // when port is not specified, it is converted into an empty string
        // we want to avoid NaN or empty string as a values in ClientConfig
        if (value !== '') {
          const v = parseInt(value, 10)
          if (isNaN(v)) {
            throw new Error(`Invalid ${key}: ${value}`)
          }

          c[key] = v
        }
      } else {
        c[key] = value
      }
    }

    return c
  }, Object.create(null))

  return poolConfig
}

// parses a connection string into ClientConfig
function parseIntoClientConfig(str) {
  return toClientConfig(parse(str))
}

function deprecatedSslModeWarning(sslmode) {
  if (!deprecatedSslModeWarning.warned && typeof process !== 'undefined' && process.emitWarning) {
    deprecatedSslModeWarning.warned = true
    process.emitWarning(`SECURITY WARNING: The SSL modes 'prefer', 'require', and 'verify-ca' are treated as aliases for 'verify-full'.
In the next major version (pg-connection-string v3.0.0 and pg v9.0.0), these modes will adopt standard libpq semantics, which have weaker security guarantees.

To prepare for this change:
- If you want the current behavior, explicitly use 'sslmode=verify-full'
- If you want libpq compatibility now, use 'uselibpqcompat=true&sslmode=${sslmode}'

See https://www.postgresql.org/docs/current/libpq-ssl.html for libpq SSL mode definitions.`)
  }
}

module.exports = parse

parse.parse = parse
parse.toClientConfig = toClientConfig
parse.parseIntoClientConfig = parseIntoClientConfig


/***/ }),

/***/ 2299:
/***/ ((module) => {



// selected so (BASE - 1) * 0x100000000 + 0xffffffff is a safe integer
var BASE = 1000000;

function readInt8(buffer) {
	var high = buffer.readInt32BE(0);
	var low = buffer.readUInt32BE(4);
	var sign = '';

	if (high < 0) {
		high = ~high + (low === 0);
		low = (~low + 1) >>> 0;
		sign = '-';
	}

	var result = '';
	var carry;
	var t;
	var digits;
	var pad;
	var l;
	var i;

	{
		carry = high % BASE;
		high = high / BASE >>> 0;

		t = 0x100000000 * carry + low;
		low = t / BASE >>> 0;
		digits = '' + (t - BASE * low);

		if (low === 0 && high === 0) {
			return sign + digits + result;
		}

		pad = '';
		l = 6 - digits.length;

		for (i = 0; i < l; i++) {
			pad += '0';
		}

		result = pad + digits + result;
	}

	{
		carry = high % BASE;
		high = high / BASE >>> 0;

		t = 0x100000000 * carry + low;
		low = t / BASE >>> 0;
		digits = '' + (t - BASE * low);

		if (low === 0 && high === 0) {
			return sign + digits + result;
		}

		pad = '';
		l = 6 - digits.length;

		for (i = 0; i < l; i++) {
			pad += '0';
		}

		result = pad + digits + result;
	}

	{
		carry = high % BASE;
		high = high / BASE >>> 0;

		t = 0x100000000 * carry + low;
		low = t / BASE >>> 0;
		digits = '' + (t - BASE * low);

		if (low === 0 && high === 0) {
			return sign + digits + result;
		}

		pad = '';
		l = 6 - digits.length;

		for (i = 0; i < l; i++) {
			pad += '0';
		}

		result = pad + digits + result;
	}

	{
		carry = high % BASE;
		t = 0x100000000 * carry + low;
		digits = '' + t % BASE;

		return sign + digits + result;
	}
}

module.exports = readInt8;


/***/ }),

/***/ 7558:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


const EventEmitter = (__nccwpck_require__(4434).EventEmitter)

const NOOP = function () {}

const removeWhere = (list, predicate) => {
  const i = list.findIndex(predicate)

  return i === -1 ? undefined : list.splice(i, 1)[0]
}

class IdleItem {
  constructor(client, idleListener, timeoutId) {
    this.client = client
    this.idleListener = idleListener
    this.timeoutId = timeoutId
  }
}

class PendingItem {
  constructor(callback) {
    this.callback = callback
  }
}

function throwOnDoubleRelease() {
  throw new Error('Release called on client which has already been released to the pool.')
}

function promisify(Promise, callback) {
  if (callback) {
    return { callback: callback, result: undefined }
  }
  let rej
  let res
  const cb = function (err, client) {
    err ? rej(err) : res(client)
  }
  const result = new Promise(function (resolve, reject) {
    res = resolve
    rej = reject
  }).catch((err) => {
    // replace the stack trace that leads to `TCP.onStreamRead` with one that leads back to the
    // application that created the query
    Error.captureStackTrace(err)
    throw err
  })
  return { callback: cb, result: result }
}

function makeIdleListener(pool, client) {
  return function idleListener(err) {
    err.client = client

    client.removeListener('error', idleListener)
    client.on('error', () => {
      pool.log('additional client error after disconnection due to error', err)
    })
    pool._remove(client)
    // TODO - document that once the pool emits an error
    // the client has already been closed & purged and is unusable
    pool.emit('error', err, client)
  }
}

class Pool extends EventEmitter {
  constructor(options, Client) {
    super()
    this.options = Object.assign({}, options)

    if (options != null && 'password' in options) {
      // "hiding" the password so it doesn't show up in stack traces
      // or if the client is console.logged
      Object.defineProperty(this.options, 'password', {
        configurable: true,
        enumerable: false,
        writable: true,
        value: options.password,
      })
    }
    if (options != null && options.ssl && options.ssl.key) {
      // "hiding" the ssl->key so it doesn't show up in stack traces
      // or if the client is console.logged
      Object.defineProperty(this.options.ssl, 'key', {
        enumerable: false,
      })
    }

    this.options.max = this.options.max || this.options.poolSize || 10
    this.options.min = this.options.min || 0
    this.options.maxUses = this.options.maxUses || Infinity
    this.options.allowExitOnIdle = this.options.allowExitOnIdle || false
    this.options.maxLifetimeSeconds = this.options.maxLifetimeSeconds || 0
    this.log = this.options.log || function () {}
    this.Client = this.options.Client || Client || (__nccwpck_require__(3273).Client)
    this.Promise = this.options.Promise || global.Promise

    if (typeof this.options.idleTimeoutMillis === 'undefined') {
      this.options.idleTimeoutMillis = 10000
    }

    this._clients = []
    this._idle = []
    this._expired = new WeakSet()
    this._pendingQueue = []
    this._endCallback = undefined
    this.ending = false
    this.ended = false
  }

  _promiseTry(f) {
    const Promise = this.Promise
    if (typeof Promise.try === 'function') {
      return Promise.try(f)
    }
    return new Promise((resolve) => resolve(f()))
  }

  _isFull() {
    return this._clients.length >= this.options.max
  }

  _isAboveMin() {
    return this._clients.length > this.options.min
  }

  _pulseQueue() {
    this.log('pulse queue')
    if (this.ended) {
      this.log('pulse queue ended')
      return
    }
    if (this.ending) {
      this.log('pulse queue on ending')
      if (this._idle.length) {
        this._idle.slice().map((item) => {
          this._remove(item.client)
        })
      }
      if (!this._clients.length) {
        this.ended = true
        this._endCallback()
      }
      return
    }

    // if we don't have any waiting, do nothing
    if (!this._pendingQueue.length) {
      this.log('no queued requests')
      return
    }
    // if we don't have any idle clients and we have no more room do nothing
    if (!this._idle.length && this._isFull()) {
      return
    }
    const pendingItem = this._pendingQueue.shift()
    if (this._idle.length) {
      const idleItem = this._idle.pop()
      clearTimeout(idleItem.timeoutId)
      const client = idleItem.client
      client.ref && client.ref()
      const idleListener = idleItem.idleListener

      return this._acquireClient(client, pendingItem, idleListener, false)
    }
    if (!this._isFull()) {
      return this.newClient(pendingItem)
    }
    throw new Error('unexpected condition')
  }

  _remove(client, callback) {
    const removed = removeWhere(this._idle, (item) => item.client === client)

    if (removed !== undefined) {
      clearTimeout(removed.timeoutId)
    }

    this._clients = this._clients.filter((c) => c !== client)
    const context = this
    client.end(() => {
      context.emit('remove', client)

      if (typeof callback === 'function') {
        callback()
      }
    })
  }

  connect(cb) {
    if (this.ending) {
      const err = new Error('Cannot use a pool after calling end on the pool')
      return cb ? cb(err) : this.Promise.reject(err)
    }

    const response = promisify(this.Promise, cb)
    const result = response.result

    // if we don't have to connect a new client, don't do so
    if (this._isFull() || this._idle.length) {
      // if we have idle clients schedule a pulse immediately
      if (this._idle.length) {
        process.nextTick(() => this._pulseQueue())
      }

      if (!this.options.connectionTimeoutMillis) {
        this._pendingQueue.push(new PendingItem(response.callback))
        return result
      }

      const queueCallback = (err, res, done) => {
        clearTimeout(tid)
        response.callback(err, res, done)
      }

      const pendingItem = new PendingItem(queueCallback)

      // set connection timeout on checking out an existing client
      const tid = setTimeout(() => {
        // remove the callback from pending waiters because
        // we're going to call it with a timeout error
        removeWhere(this._pendingQueue, (i) => i.callback === queueCallback)
        pendingItem.timedOut = true
        response.callback(new Error('timeout exceeded when trying to connect'))
      }, this.options.connectionTimeoutMillis)

      if (tid.unref) {
        tid.unref()
      }

      this._pendingQueue.push(pendingItem)
      return result
    }

    this.newClient(new PendingItem(response.callback))

    return result
  }

  newClient(pendingItem) {
    const client = new this.Client(this.options)
    this._clients.push(client)
    const idleListener = makeIdleListener(this, client)

    this.log('checking client timeout')

    // connection timeout logic
    let tid
    let timeoutHit = false
    if (this.options.connectionTimeoutMillis) {
      tid = setTimeout(() => {
        if (client.connection) {
          this.log('ending client due to timeout')
          timeoutHit = true
          client.connection.stream.destroy()
        } else if (!client.isConnected()) {
          this.log('ending client due to timeout')
          timeoutHit = true
          // force kill the node driver, and let libpq do its teardown
          client.end()
        }
      }, this.options.connectionTimeoutMillis)
    }

    this.log('connecting new client')
    client.connect((err) => {
      if (tid) {
        clearTimeout(tid)
      }
      client.on('error', idleListener)
      if (err) {
        this.log('client failed to connect', err)
        // remove the dead client from our list of clients
        this._clients = this._clients.filter((c) => c !== client)
        if (timeoutHit) {
          err = new Error('Connection terminated due to connection timeout', { cause: err })
        }

        // this client won’t be released, so move on immediately
        this._pulseQueue()

        if (!pendingItem.timedOut) {
          pendingItem.callback(err, undefined, NOOP)
        }
      } else {
        this.log('new client connected')

        if (this.options.onConnect) {
          this._promiseTry(() => this.options.onConnect(client)).then(
            () => {
              this._afterConnect(client, pendingItem, idleListener)
            },
            (hookErr) => {
              this._clients = this._clients.filter((c) => c !== client)
              client.end(() => {
                this._pulseQueue()
                if (!pendingItem.timedOut) {
                  pendingItem.callback(hookErr, undefined, NOOP)
                }
              })
            }
          )
          return
        }

        return this._afterConnect(client, pendingItem, idleListener)
      }
    })
  }

  _afterConnect(client, pendingItem, idleListener) {
    if (this.options.maxLifetimeSeconds !== 0) {
      const maxLifetimeTimeout = setTimeout(() => {
        this.log('ending client due to expired lifetime')
        this._expired.add(client)
        const idleIndex = this._idle.findIndex((idleItem) => idleItem.client === client)
        if (idleIndex !== -1) {
          this._acquireClient(
            client,
            new PendingItem((err, client, clientRelease) => clientRelease()),
            idleListener,
            false
          )
        }
      }, this.options.maxLifetimeSeconds * 1000)

      maxLifetimeTimeout.unref()
      client.once('end', () => clearTimeout(maxLifetimeTimeout))
    }

    return this._acquireClient(client, pendingItem, idleListener, true)
  }

  // acquire a client for a pending work item
  _acquireClient(client, pendingItem, idleListener, isNew) {
    if (isNew) {
      this.emit('connect', client)
    }

    this.emit('acquire', client)

    client.release = this._releaseOnce(client, idleListener)

    client.removeListener('error', idleListener)

    if (!pendingItem.timedOut) {
      if (isNew && this.options.verify) {
        this.options.verify(client, (err) => {
          if (err) {
            client.release(err)
            return pendingItem.callback(err, undefined, NOOP)
          }

          pendingItem.callback(undefined, client, client.release)
        })
      } else {
        pendingItem.callback(undefined, client, client.release)
      }
    } else {
      if (isNew && this.options.verify) {
        this.options.verify(client, client.release)
      } else {
        client.release()
      }
    }
  }

  // returns a function that wraps _release and throws if called more than once
  _releaseOnce(client, idleListener) {
    let released = false

    return (err) => {
      if (released) {
        throwOnDoubleRelease()
      }

      released = true
      this._release(client, idleListener, err)
    }
  }

  // release a client back to the poll, include an error
  // to remove it from the pool
  _release(client, idleListener, err) {
    client.on('error', idleListener)

    client._poolUseCount = (client._poolUseCount || 0) + 1

    this.emit('release', err, client)

    // TODO(bmc): expose a proper, public interface _queryable and _ending
    if (err || this.ending || !client._queryable || client._ending || client._poolUseCount >= this.options.maxUses) {
      if (client._poolUseCount >= this.options.maxUses) {
        this.log('remove expended client')
      }

      return this._remove(client, this._pulseQueue.bind(this))
    }

    const isExpired = this._expired.has(client)
    if (isExpired) {
      this.log('remove expired client')
      this._expired.delete(client)
      return this._remove(client, this._pulseQueue.bind(this))
    }

    // idle timeout
    let tid
    if (this.options.idleTimeoutMillis && this._isAboveMin()) {
      tid = setTimeout(() => {
        if (this._isAboveMin()) {
          this.log('remove idle client')
          this._remove(client, this._pulseQueue.bind(this))
        }
      }, this.options.idleTimeoutMillis)

      if (this.options.allowExitOnIdle) {
        // allow Node to exit if this is all that's left
        tid.unref()
      }
    }

    if (this.options.allowExitOnIdle) {
      client.unref()
    }

    this._idle.push(new IdleItem(client, idleListener, tid))
    this._pulseQueue()
  }

  query(text, values, cb) {
    // guard clause against passing a function as the first parameter
    if (typeof text === 'function') {
      const response = promisify(this.Promise, text)
      setImmediate(function () {
        return response.callback(new Error('Passing a function as the first parameter to pool.query is not supported'))
      })
      return response.result
    }

    // allow plain text query without values, but callback
    if (typeof values === 'function') {
      cb = values
      values = undefined
    }
    const response = promisify(this.Promise, cb)
    cb = response.callback

    this.connect((err, client) => {
      if (err) {
        return cb(err)
      }

      let clientReleased = false
      const onError = (err) => {
        if (clientReleased) {
          return
        }
        clientReleased = true
        client.release(err)
        cb(err)
      }

      client.once('error', onError)
      this.log('dispatching query')
      try {
        client.query(text, values, (err, res) => {
          this.log('query dispatched')
          client.removeListener('error', onError)
          if (clientReleased) {
            return
          }
          clientReleased = true
          client.release(err)
          if (err) {
            return cb(err)
          }
          return cb(undefined, res)
        })
      } catch (err) {
        client.release(err)
        return cb(err)
      }
    })
    return response.result
  }

  end(cb) {
    this.log('ending')
    if (this.ending) {
      const err = new Error('Called end on pool more than once')
      return cb ? cb(err) : this.Promise.reject(err)
    }
    this.ending = true
    const promised = promisify(this.Promise, cb)
    this._endCallback = promised.callback
    this._pulseQueue()
    return promised.result
  }

  get waitingCount() {
    return this._pendingQueue.length
  }

  get idleCount() {
    return this._idle.length
  }

  get expiredCount() {
    return this._clients.reduce((acc, client) => acc + (this._expired.has(client) ? 1 : 0), 0)
  }

  get totalCount() {
    return this._clients.length
  }
}
module.exports = Pool


/***/ }),

/***/ 9971:
/***/ ((__unused_webpack_module, exports) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.BufferReader = void 0;
class BufferReader {
    constructor(offset = 0) {
        this.offset = offset;
        this.buffer = Buffer.allocUnsafe(0);
        // TODO(bmc): support non-utf8 encoding?
        this.encoding = 'utf-8';
    }
    setBuffer(offset, buffer) {
        this.offset = offset;
        this.buffer = buffer;
    }
    int16() {
        const result = this.buffer.readInt16BE(this.offset);
        this.offset += 2;
        return result;
    }
    byte() {
        const result = this.buffer[this.offset];
        this.offset++;
        return result;
    }
    int32() {
        const result = this.buffer.readInt32BE(this.offset);
        this.offset += 4;
        return result;
    }
    uint32() {
        const result = this.buffer.readUInt32BE(this.offset);
        this.offset += 4;
        return result;
    }
    string(length) {
        const result = this.buffer.toString(this.encoding, this.offset, this.offset + length);
        this.offset += length;
        return result;
    }
    cstring() {
        const start = this.offset;
        let end = start;
        // eslint-disable-next-line no-empty
        while (this.buffer[end++]) { }
        this.offset = end;
        return this.buffer.toString(this.encoding, start, end - 1);
    }
    bytes(length) {
        const result = this.buffer.slice(this.offset, this.offset + length);
        this.offset += length;
        return result;
    }
}
exports.BufferReader = BufferReader;
//# sourceMappingURL=buffer-reader.js.map

/***/ }),

/***/ 9315:
/***/ ((__unused_webpack_module, exports) => {


//binary data writer tuned for encoding binary specific to the postgres binary protocol
Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.Writer = void 0;
class Writer {
    constructor(size = 256) {
        this.size = size;
        this.offset = 5;
        this.headerPosition = 0;
        this.buffer = Buffer.allocUnsafe(size);
    }
    ensure(size) {
        const remaining = this.buffer.length - this.offset;
        if (remaining < size) {
            const oldBuffer = this.buffer;
            // exponential growth factor of around ~ 1.5
            // https://stackoverflow.com/questions/2269063/buffer-growth-strategy
            const newSize = oldBuffer.length + (oldBuffer.length >> 1) + size;
            this.buffer = Buffer.allocUnsafe(newSize);
            oldBuffer.copy(this.buffer, 0, 0, this.offset);
        }
    }
    addInt32(num) {
        this.ensure(4);
        this.buffer[this.offset++] = (num >>> 24) & 0xff;
        this.buffer[this.offset++] = (num >>> 16) & 0xff;
        this.buffer[this.offset++] = (num >>> 8) & 0xff;
        this.buffer[this.offset++] = (num >>> 0) & 0xff;
        return this;
    }
    addInt16(num) {
        this.ensure(2);
        this.buffer[this.offset++] = (num >>> 8) & 0xff;
        this.buffer[this.offset++] = (num >>> 0) & 0xff;
        return this;
    }
    addCString(string) {
        if (!string) {
            this.ensure(1);
        }
        else {
            const len = Buffer.byteLength(string);
            this.ensure(len + 1); // +1 for null terminator
            this.buffer.write(string, this.offset, 'utf-8');
            this.offset += len;
        }
        this.buffer[this.offset++] = 0; // null terminator
        return this;
    }
    addString(string = '') {
        const len = Buffer.byteLength(string);
        this.ensure(len);
        this.buffer.write(string, this.offset);
        this.offset += len;
        return this;
    }
    // Write an Int32 byte-length prefix immediately followed by the string's UTF-8
    // bytes. Postgres' Bind wire format prefixes every parameter with its length,
    // and doing it in one method computes Buffer.byteLength ONCE — the previous
    // `addInt32(Buffer.byteLength(s)).addString(s)` pairing scanned the string
    // three times (byteLength for the prefix, byteLength again inside addString,
    // then the encode), which is costly for large text parameters.
    addInt32PrefixedString(string) {
        const len = Buffer.byteLength(string);
        this.ensure(4 + len);
        const buffer = this.buffer;
        let offset = this.offset;
        buffer[offset++] = (len >>> 24) & 0xff;
        buffer[offset++] = (len >>> 16) & 0xff;
        buffer[offset++] = (len >>> 8) & 0xff;
        buffer[offset++] = (len >>> 0) & 0xff;
        buffer.write(string, offset, 'utf-8');
        this.offset = offset + len;
        return this;
    }
    add(otherBuffer) {
        this.ensure(otherBuffer.length);
        otherBuffer.copy(this.buffer, this.offset);
        this.offset += otherBuffer.length;
        return this;
    }
    /**
     * Appends an uninitialized block of {@link size} bytes to the buffer and returns its offset.
     */
    reserveUnsafe(size) {
        const offset = this.offset;
        this.ensure(size);
        this.offset += size;
        return offset;
    }
    join(code) {
        if (code) {
            this.buffer[this.headerPosition] = code;
            //length is everything in this packet minus the code
            const length = this.offset - (this.headerPosition + 1);
            this.buffer.writeInt32BE(length, this.headerPosition + 1);
        }
        return this.buffer.slice(code ? 0 : 5, this.offset);
    }
    flush(code) {
        const result = this.join(code);
        this.offset = 5;
        this.headerPosition = 0;
        this.buffer = Buffer.allocUnsafe(this.size);
        return result;
    }
    clear() {
        this.offset = 5;
        this.headerPosition = 0;
    }
}
exports.Writer = Writer;
//# sourceMappingURL=buffer-writer.js.map

/***/ }),

/***/ 4233:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.DatabaseError = exports.serialize = void 0;
exports.parse = parse;
const messages_1 = __nccwpck_require__(5809);
Object.defineProperty(exports, "DatabaseError", ({ enumerable: true, get: function () { return messages_1.DatabaseError; } }));
const serializer_1 = __nccwpck_require__(6513);
Object.defineProperty(exports, "serialize", ({ enumerable: true, get: function () { return serializer_1.serialize; } }));
const parser_1 = __nccwpck_require__(3318);
function parse(stream, callback) {
    const parser = new parser_1.Parser();
    stream.on('data', (buffer) => parser.parse(buffer, callback));
    return new Promise((resolve) => stream.on('end', () => resolve()));
}
//# sourceMappingURL=index.js.map

/***/ }),

/***/ 5809:
/***/ ((__unused_webpack_module, exports) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.NoticeMessage = exports.DataRowMessage = exports.CommandCompleteMessage = exports.ReadyForQueryMessage = exports.NotificationResponseMessage = exports.BackendKeyDataMessage = exports.AuthenticationMD5Password = exports.ParameterStatusMessage = exports.ParameterDescriptionMessage = exports.RowDescriptionMessage = exports.Field = exports.CopyResponse = exports.CopyDataMessage = exports.DatabaseError = exports.copyDone = exports.emptyQuery = exports.replicationStart = exports.portalSuspended = exports.noData = exports.closeComplete = exports.bindComplete = exports.parseComplete = void 0;
exports.parseComplete = {
    name: 'parseComplete',
    length: 5,
};
exports.bindComplete = {
    name: 'bindComplete',
    length: 5,
};
exports.closeComplete = {
    name: 'closeComplete',
    length: 5,
};
exports.noData = {
    name: 'noData',
    length: 5,
};
exports.portalSuspended = {
    name: 'portalSuspended',
    length: 5,
};
exports.replicationStart = {
    name: 'replicationStart',
    length: 4,
};
exports.emptyQuery = {
    name: 'emptyQuery',
    length: 4,
};
exports.copyDone = {
    name: 'copyDone',
    length: 4,
};
class DatabaseError extends Error {
    constructor(message, length, name) {
        super(message);
        this.length = length;
        this.name = name;
    }
}
exports.DatabaseError = DatabaseError;
class CopyDataMessage {
    constructor(length, chunk) {
        this.length = length;
        this.chunk = chunk;
        this.name = 'copyData';
    }
}
exports.CopyDataMessage = CopyDataMessage;
class CopyResponse {
    constructor(length, name, binary, columnCount) {
        this.length = length;
        this.name = name;
        this.binary = binary;
        this.columnTypes = new Array(columnCount);
    }
}
exports.CopyResponse = CopyResponse;
class Field {
    constructor(name, tableID, columnID, dataTypeID, dataTypeSize, dataTypeModifier, format) {
        this.name = name;
        this.tableID = tableID;
        this.columnID = columnID;
        this.dataTypeID = dataTypeID;
        this.dataTypeSize = dataTypeSize;
        this.dataTypeModifier = dataTypeModifier;
        this.format = format;
    }
}
exports.Field = Field;
class RowDescriptionMessage {
    constructor(length, fieldCount) {
        this.length = length;
        this.fieldCount = fieldCount;
        this.name = 'rowDescription';
        this.fields = new Array(this.fieldCount);
    }
}
exports.RowDescriptionMessage = RowDescriptionMessage;
class ParameterDescriptionMessage {
    constructor(length, parameterCount) {
        this.length = length;
        this.parameterCount = parameterCount;
        this.name = 'parameterDescription';
        this.dataTypeIDs = new Array(this.parameterCount);
    }
}
exports.ParameterDescriptionMessage = ParameterDescriptionMessage;
class ParameterStatusMessage {
    constructor(length, parameterName, parameterValue) {
        this.length = length;
        this.parameterName = parameterName;
        this.parameterValue = parameterValue;
        this.name = 'parameterStatus';
    }
}
exports.ParameterStatusMessage = ParameterStatusMessage;
class AuthenticationMD5Password {
    constructor(length, salt) {
        this.length = length;
        this.salt = salt;
        this.name = 'authenticationMD5Password';
    }
}
exports.AuthenticationMD5Password = AuthenticationMD5Password;
class BackendKeyDataMessage {
    constructor(length, processID, secretKey) {
        this.length = length;
        this.processID = processID;
        this.secretKey = secretKey;
        this.name = 'backendKeyData';
    }
}
exports.BackendKeyDataMessage = BackendKeyDataMessage;
class NotificationResponseMessage {
    constructor(length, processId, channel, payload) {
        this.length = length;
        this.processId = processId;
        this.channel = channel;
        this.payload = payload;
        this.name = 'notification';
    }
}
exports.NotificationResponseMessage = NotificationResponseMessage;
class ReadyForQueryMessage {
    constructor(length, status) {
        this.length = length;
        this.status = status;
        this.name = 'readyForQuery';
    }
}
exports.ReadyForQueryMessage = ReadyForQueryMessage;
class CommandCompleteMessage {
    constructor(length, text) {
        this.length = length;
        this.text = text;
        this.name = 'commandComplete';
    }
}
exports.CommandCompleteMessage = CommandCompleteMessage;
class DataRowMessage {
    constructor(length, fields) {
        this.length = length;
        this.fields = fields;
        this.name = 'dataRow';
        this.fieldCount = fields.length;
    }
}
exports.DataRowMessage = DataRowMessage;
class NoticeMessage {
    constructor(length, message) {
        this.length = length;
        this.message = message;
        this.name = 'notice';
    }
}
exports.NoticeMessage = NoticeMessage;
//# sourceMappingURL=messages.js.map

/***/ }),

/***/ 3318:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.Parser = void 0;
const messages_1 = __nccwpck_require__(5809);
const buffer_reader_1 = __nccwpck_require__(9971);
// every message is prefixed with a single byte
const CODE_LENGTH = 1;
// every message has an int32 length which includes itself but does
// NOT include the code in the length
const LEN_LENGTH = 4;
const HEADER_LENGTH = CODE_LENGTH + LEN_LENGTH;
// A placeholder for a `BackendMessage`’s length value that will be set after construction.
const LATEINIT_LENGTH = -1;
const emptyBuffer = Buffer.allocUnsafe(0);
class Parser {
    constructor(opts) {
        this.buffer = emptyBuffer;
        this.bufferLength = 0;
        this.bufferOffset = 0;
        this.reader = new buffer_reader_1.BufferReader();
        if ((opts === null || opts === void 0 ? void 0 : opts.mode) === 'binary') {
            throw new Error('Binary mode not supported yet');
        }
        this.mode = (opts === null || opts === void 0 ? void 0 : opts.mode) || 'text';
    }
    parse(buffer, callback) {
        this.mergeBuffer(buffer);
        const bufferFullLength = this.bufferOffset + this.bufferLength;
        let offset = this.bufferOffset;
        while (offset + HEADER_LENGTH <= bufferFullLength) {
            // code is 1 byte long - it identifies the message type
            const code = this.buffer[offset];
            // length is 1 Uint32BE - it is the length of the message EXCLUDING the code
            const length = this.buffer.readUInt32BE(offset + CODE_LENGTH);
            const fullMessageLength = CODE_LENGTH + length;
            if (fullMessageLength + offset <= bufferFullLength) {
                const message = this.handlePacket(offset + HEADER_LENGTH, code, length, this.buffer);
                callback(message);
                offset += fullMessageLength;
            }
            else {
                break;
            }
        }
        if (offset === bufferFullLength) {
            // No more use for the buffer
            this.buffer = emptyBuffer;
            this.bufferLength = 0;
            this.bufferOffset = 0;
        }
        else {
            // Adjust the cursors of remainingBuffer
            this.bufferLength = bufferFullLength - offset;
            this.bufferOffset = offset;
        }
    }
    mergeBuffer(buffer) {
        if (this.bufferLength > 0) {
            const newLength = this.bufferLength + buffer.byteLength;
            const newFullLength = newLength + this.bufferOffset;
            if (newFullLength > this.buffer.byteLength) {
                // We can't concat the new buffer with the remaining one
                let newBuffer;
                if (newLength <= this.buffer.byteLength && this.bufferOffset >= this.bufferLength) {
                    // We can move the relevant part to the beginning of the buffer instead of allocating a new buffer
                    newBuffer = this.buffer;
                }
                else {
                    // Allocate a new larger buffer
                    let newBufferLength = this.buffer.byteLength * 2;
                    while (newLength >= newBufferLength) {
                        newBufferLength *= 2;
                    }
                    newBuffer = Buffer.allocUnsafe(newBufferLength);
                }
                // Move the remaining buffer to the new one
                this.buffer.copy(newBuffer, 0, this.bufferOffset, this.bufferOffset + this.bufferLength);
                this.buffer = newBuffer;
                this.bufferOffset = 0;
            }
            // Concat the new buffer with the remaining one
            buffer.copy(this.buffer, this.bufferOffset + this.bufferLength);
            this.bufferLength = newLength;
        }
        else {
            this.buffer = buffer;
            this.bufferOffset = 0;
            this.bufferLength = buffer.byteLength;
        }
    }
    handlePacket(offset, code, length, bytes) {
        const { reader } = this;
        // NOTE: This undesirably retains the buffer in `this.reader` if the `parse*Message` calls below throw. However, those should only throw in the case of a protocol error, which normally results in the reader being discarded.
        reader.setBuffer(offset, bytes);
        let message;
        switch (code) {
            case 50 /* MessageCodes.BindComplete */:
                message = messages_1.bindComplete;
                break;
            case 49 /* MessageCodes.ParseComplete */:
                message = messages_1.parseComplete;
                break;
            case 51 /* MessageCodes.CloseComplete */:
                message = messages_1.closeComplete;
                break;
            case 110 /* MessageCodes.NoData */:
                message = messages_1.noData;
                break;
            case 115 /* MessageCodes.PortalSuspended */:
                message = messages_1.portalSuspended;
                break;
            case 99 /* MessageCodes.CopyDone */:
                message = messages_1.copyDone;
                break;
            case 87 /* MessageCodes.ReplicationStart */:
                message = messages_1.replicationStart;
                break;
            case 73 /* MessageCodes.EmptyQuery */:
                message = messages_1.emptyQuery;
                break;
            case 68 /* MessageCodes.DataRow */:
                message = parseDataRowMessage(reader);
                break;
            case 67 /* MessageCodes.CommandComplete */:
                message = parseCommandCompleteMessage(reader);
                break;
            case 90 /* MessageCodes.ReadyForQuery */:
                message = parseReadyForQueryMessage(reader);
                break;
            case 65 /* MessageCodes.NotificationResponse */:
                message = parseNotificationMessage(reader);
                break;
            case 82 /* MessageCodes.AuthenticationResponse */:
                message = parseAuthenticationResponse(reader, length);
                break;
            case 83 /* MessageCodes.ParameterStatus */:
                message = parseParameterStatusMessage(reader);
                break;
            case 75 /* MessageCodes.BackendKeyData */:
                message = parseBackendKeyData(reader);
                break;
            case 69 /* MessageCodes.ErrorMessage */:
                message = parseErrorMessage(reader, 'error');
                break;
            case 78 /* MessageCodes.NoticeMessage */:
                message = parseErrorMessage(reader, 'notice');
                break;
            case 84 /* MessageCodes.RowDescriptionMessage */:
                message = parseRowDescriptionMessage(reader);
                break;
            case 116 /* MessageCodes.ParameterDescriptionMessage */:
                message = parseParameterDescriptionMessage(reader);
                break;
            case 71 /* MessageCodes.CopyIn */:
                message = parseCopyInMessage(reader);
                break;
            case 72 /* MessageCodes.CopyOut */:
                message = parseCopyOutMessage(reader);
                break;
            case 100 /* MessageCodes.CopyData */:
                message = parseCopyData(reader, length);
                break;
            default:
                return new messages_1.DatabaseError('received invalid response: ' + code.toString(16), length, 'error');
        }
        reader.setBuffer(0, emptyBuffer);
        message.length = length;
        return message;
    }
}
exports.Parser = Parser;
const parseReadyForQueryMessage = (reader) => {
    const status = reader.string(1);
    return new messages_1.ReadyForQueryMessage(LATEINIT_LENGTH, status);
};
const parseCommandCompleteMessage = (reader) => {
    const text = reader.cstring();
    return new messages_1.CommandCompleteMessage(LATEINIT_LENGTH, text);
};
const parseCopyData = (reader, length) => {
    const chunk = reader.bytes(length - 4);
    return new messages_1.CopyDataMessage(LATEINIT_LENGTH, chunk);
};
const parseCopyInMessage = (reader) => parseCopyMessage(reader, 'copyInResponse');
const parseCopyOutMessage = (reader) => parseCopyMessage(reader, 'copyOutResponse');
const parseCopyMessage = (reader, messageName) => {
    const isBinary = reader.byte() !== 0;
    const columnCount = reader.int16();
    const message = new messages_1.CopyResponse(LATEINIT_LENGTH, messageName, isBinary, columnCount);
    for (let i = 0; i < columnCount; i++) {
        message.columnTypes[i] = reader.int16();
    }
    return message;
};
const parseNotificationMessage = (reader) => {
    const processId = reader.int32();
    const channel = reader.cstring();
    const payload = reader.cstring();
    return new messages_1.NotificationResponseMessage(LATEINIT_LENGTH, processId, channel, payload);
};
const parseRowDescriptionMessage = (reader) => {
    const fieldCount = reader.int16();
    const message = new messages_1.RowDescriptionMessage(LATEINIT_LENGTH, fieldCount);
    for (let i = 0; i < fieldCount; i++) {
        message.fields[i] = parseField(reader);
    }
    return message;
};
const parseField = (reader) => {
    const name = reader.cstring();
    const tableID = reader.uint32();
    const columnID = reader.int16();
    const dataTypeID = reader.uint32();
    const dataTypeSize = reader.int16();
    const dataTypeModifier = reader.int32();
    const mode = reader.int16() === 0 ? 'text' : 'binary';
    return new messages_1.Field(name, tableID, columnID, dataTypeID, dataTypeSize, dataTypeModifier, mode);
};
const parseParameterDescriptionMessage = (reader) => {
    const parameterCount = reader.int16();
    const message = new messages_1.ParameterDescriptionMessage(LATEINIT_LENGTH, parameterCount);
    for (let i = 0; i < parameterCount; i++) {
        // OIDs are unsigned, same as dataTypeID in parseField above
        message.dataTypeIDs[i] = reader.uint32();
    }
    return message;
};
const parseDataRowMessage = (reader) => {
    const fieldCount = reader.int16();
    const fields = new Array(fieldCount);
    for (let i = 0; i < fieldCount; i++) {
        const len = reader.int32();
        // a -1 for length means the value of the field is null
        fields[i] = len === -1 ? null : reader.string(len);
    }
    return new messages_1.DataRowMessage(LATEINIT_LENGTH, fields);
};
const parseParameterStatusMessage = (reader) => {
    const name = reader.cstring();
    const value = reader.cstring();
    return new messages_1.ParameterStatusMessage(LATEINIT_LENGTH, name, value);
};
const parseBackendKeyData = (reader) => {
    const processID = reader.int32();
    const secretKey = reader.int32();
    return new messages_1.BackendKeyDataMessage(LATEINIT_LENGTH, processID, secretKey);
};
const parseAuthenticationResponse = (reader, length) => {
    const code = reader.int32();
    // TODO(bmc): maybe better types here
    const message = {
        name: 'authenticationOk',
        length,
    };
    switch (code) {
        case 0: // AuthenticationOk
            break;
        case 3: // AuthenticationCleartextPassword
            if (message.length === 8) {
                message.name = 'authenticationCleartextPassword';
            }
            break;
        case 5: // AuthenticationMD5Password
            if (message.length === 12) {
                message.name = 'authenticationMD5Password';
                const salt = reader.bytes(4);
                return new messages_1.AuthenticationMD5Password(LATEINIT_LENGTH, salt);
            }
            break;
        case 10: // AuthenticationSASL
            {
                message.name = 'authenticationSASL';
                message.mechanisms = [];
                let mechanism;
                do {
                    mechanism = reader.cstring();
                    if (mechanism) {
                        message.mechanisms.push(mechanism);
                    }
                } while (mechanism);
            }
            break;
        case 11: // AuthenticationSASLContinue
            message.name = 'authenticationSASLContinue';
            message.data = reader.string(length - 8);
            break;
        case 12: // AuthenticationSASLFinal
            message.name = 'authenticationSASLFinal';
            message.data = reader.string(length - 8);
            break;
        default:
            throw new Error('Unknown authenticationOk message type ' + code);
    }
    return message;
};
const parseErrorMessage = (reader, name) => {
    const fields = {};
    let fieldType = reader.string(1);
    while (fieldType !== '\0') {
        fields[fieldType] = reader.cstring();
        fieldType = reader.string(1);
    }
    const messageValue = fields.M;
    const message = name === 'notice'
        ? new messages_1.NoticeMessage(LATEINIT_LENGTH, messageValue)
        : new messages_1.DatabaseError(messageValue, LATEINIT_LENGTH, name);
    message.severity = fields.S;
    message.code = fields.C;
    message.detail = fields.D;
    message.hint = fields.H;
    message.position = fields.P;
    message.internalPosition = fields.p;
    message.internalQuery = fields.q;
    message.where = fields.W;
    message.schema = fields.s;
    message.table = fields.t;
    message.column = fields.c;
    message.dataType = fields.d;
    message.constraint = fields.n;
    message.file = fields.F;
    message.line = fields.L;
    message.routine = fields.R;
    return message;
};
//# sourceMappingURL=parser.js.map

/***/ }),

/***/ 6513:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.serialize = void 0;
const buffer_writer_1 = __nccwpck_require__(9315);
const writer = new buffer_writer_1.Writer();
const startup = (opts) => {
    // protocol version
    writer.addInt16(3).addInt16(0);
    for (const key of Object.keys(opts)) {
        writer.addCString(key).addCString(opts[key]);
    }
    writer.addCString('client_encoding').addCString('UTF8');
    const bodyBuffer = writer.addCString('').flush();
    // this message is sent without a code
    const length = bodyBuffer.length + 4;
    return new buffer_writer_1.Writer().addInt32(length).add(bodyBuffer).flush();
};
const requestSsl = () => {
    const response = Buffer.allocUnsafe(8);
    response.writeInt32BE(8, 0);
    response.writeInt32BE(80877103, 4);
    return response;
};
const password = (password) => {
    return writer.addCString(password).flush(112 /* code.startup */);
};
const sendSASLInitialResponseMessage = function (mechanism, initialResponse) {
    // 0x70 = 'p'
    writer.addCString(mechanism).addInt32PrefixedString(initialResponse);
    return writer.flush(112 /* code.startup */);
};
const sendSCRAMClientFinalMessage = function (additionalData) {
    return writer.addString(additionalData).flush(112 /* code.startup */);
};
const query = (text) => {
    return writer.addCString(text).flush(81 /* code.query */);
};
const emptyArray = [];
const parse = (query) => {
    // expect something like this:
    // { name: 'queryName',
    //   text: 'select * from blah',
    //   types: ['int8', 'bool'] }
    // normalize missing query names to allow for null
    const name = query.name || '';
    if (name.length > 63) {
        console.error('Warning! Postgres only supports 63 characters for query names.');
        console.error('You supplied %s (%s)', name, name.length);
        console.error('This can cause conflicts and silent errors executing queries');
    }
    const types = query.types || emptyArray;
    const len = types.length;
    const buffer = writer
        .addCString(name) // name of query
        .addCString(query.text) // actual query text
        .addInt16(len);
    for (let i = 0; i < len; i++) {
        buffer.addInt32(types[i]);
    }
    return writer.flush(80 /* code.parse */);
};
const writeValues = function (values, valueMapper, formatsOffset) {
    const len = values.length;
    for (let i = 0; i < len; i++) {
        const mappedVal = valueMapper ? valueMapper(values[i], i) : values[i];
        let formatByte = 0 /* ParamType.STRING */;
        if (mappedVal == null) {
            // write -1 to indicate null
            writer.addInt32(-1);
        }
        else if (mappedVal instanceof Buffer) {
            formatByte = 1 /* ParamType.BINARY */;
            // add the buffer to the param writer
            writer.addInt32(mappedVal.length);
            writer.add(mappedVal);
        }
        else {
            // length prefix + UTF-8 bytes in one pass (Buffer.byteLength computed once)
            writer.addInt32PrefixedString(mappedVal);
        }
        // beware: `writer` operations can replace `writer.buffer` with a new buffer
        const buf = writer.buffer;
        buf[formatsOffset++] = 0;
        buf[formatsOffset++] = formatByte;
    }
};
const bind = (config = {}) => {
    // normalize config
    const portal = config.portal || '';
    const statement = config.statement || '';
    const binary = config.binary || false;
    const values = config.values || emptyArray;
    const len = values.length;
    writer.addCString(portal).addCString(statement);
    // number of parameter format codes
    writer.addInt16(len);
    // space for those codes, filled by `writeValues`
    const formatsOffset = writer.reserveUnsafe(len * 2);
    // number of parameter values
    writer.addInt16(len);
    try {
        writeValues(values, config.valueMapper, formatsOffset);
    }
    catch (err) {
        writer.clear();
        throw err;
    }
    // all results use the same format code
    writer.addInt16(1);
    // format code
    writer.addInt16(binary ? 1 /* ParamType.BINARY */ : 0 /* ParamType.STRING */);
    return writer.flush(66 /* code.bind */);
};
const emptyExecute = Buffer.from([69 /* code.execute */, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00]);
const execute = (config) => {
    // this is the happy path for most queries
    if (!config || (!config.portal && !config.rows)) {
        return emptyExecute;
    }
    const portal = config.portal || '';
    const rows = config.rows || 0;
    const portalLength = Buffer.byteLength(portal);
    const len = 4 + portalLength + 1 + 4;
    // one extra bit for code
    const buff = Buffer.allocUnsafe(1 + len);
    buff[0] = 69 /* code.execute */;
    buff.writeInt32BE(len, 1);
    buff.write(portal, 5, 'utf-8');
    buff[portalLength + 5] = 0; // null terminate portal cString
    buff.writeUInt32BE(rows, buff.length - 4);
    return buff;
};
const cancel = (processID, secretKey) => {
    const buffer = Buffer.allocUnsafe(16);
    buffer.writeInt32BE(16, 0);
    buffer.writeInt16BE(1234, 4);
    buffer.writeInt16BE(5678, 6);
    buffer.writeInt32BE(processID, 8);
    buffer.writeInt32BE(secretKey, 12);
    return buffer;
};
const cstringMessage = (code, string) => {
    const stringLen = Buffer.byteLength(string);
    const len = 4 + stringLen + 1;
    // one extra bit for code
    const buffer = Buffer.allocUnsafe(1 + len);
    buffer[0] = code;
    buffer.writeInt32BE(len, 1);
    buffer.write(string, 5, 'utf-8');
    buffer[len] = 0; // null terminate cString
    return buffer;
};
const emptyDescribePortal = writer.addCString('P').flush(68 /* code.describe */);
const emptyDescribeStatement = writer.addCString('S').flush(68 /* code.describe */);
const describe = (msg) => {
    return msg.name
        ? cstringMessage(68 /* code.describe */, `${msg.type}${msg.name || ''}`)
        : msg.type === 'P'
            ? emptyDescribePortal
            : emptyDescribeStatement;
};
const close = (msg) => {
    const text = `${msg.type}${msg.name || ''}`;
    return cstringMessage(67 /* code.close */, text);
};
const copyData = (chunk) => {
    return writer.add(chunk).flush(100 /* code.copyFromChunk */);
};
const copyFail = (message) => {
    return cstringMessage(102 /* code.copyFail */, message);
};
const codeOnlyBuffer = (code) => Buffer.from([code, 0x00, 0x00, 0x00, 0x04]);
const flushBuffer = codeOnlyBuffer(72 /* code.flush */);
const syncBuffer = codeOnlyBuffer(83 /* code.sync */);
const endBuffer = codeOnlyBuffer(88 /* code.end */);
const copyDoneBuffer = codeOnlyBuffer(99 /* code.copyDone */);
const serialize = {
    startup,
    password,
    requestSsl,
    sendSASLInitialResponseMessage,
    sendSCRAMClientFinalMessage,
    query,
    parse,
    bind,
    execute,
    describe,
    close,
    flush: () => flushBuffer,
    sync: () => syncBuffer,
    end: () => endBuffer,
    copyData,
    copyDone: () => copyDoneBuffer,
    copyFail,
    cancel,
};
exports.serialize = serialize;
//# sourceMappingURL=serializer.js.map

/***/ }),

/***/ 1549:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

var textParsers = __nccwpck_require__(4784);
var binaryParsers = __nccwpck_require__(7522);
var arrayParser = __nccwpck_require__(6471);
var builtinTypes = __nccwpck_require__(6345);

exports.getTypeParser = getTypeParser;
exports.setTypeParser = setTypeParser;
exports.arrayParser = arrayParser;
exports.builtins = builtinTypes;

var typeParsers = {
  text: {},
  binary: {}
};

//the empty parse function
function noParse (val) {
  return String(val);
};

//returns a function used to convert a specific type (specified by
//oid) into a result javascript type
//note: the oid can be obtained via the following sql query:
//SELECT oid FROM pg_type WHERE typname = 'TYPE_NAME_HERE';
function getTypeParser (oid, format) {
  format = format || 'text';
  if (!typeParsers[format]) {
    return noParse;
  }
  return typeParsers[format][oid] || noParse;
};

function setTypeParser (oid, format, parseFn) {
  if(typeof format == 'function') {
    parseFn = format;
    format = 'text';
  }
  typeParsers[format][oid] = parseFn;
};

textParsers.init(function(oid, converter) {
  typeParsers.text[oid] = converter;
});

binaryParsers.init(function(oid, converter) {
  typeParsers.binary[oid] = converter;
});


/***/ }),

/***/ 6471:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

var array = __nccwpck_require__(3879);

module.exports = {
  create: function (source, transform) {
    return {
      parse: function() {
        return array.parse(source, transform);
      }
    };
  }
};


/***/ }),

/***/ 7522:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

var parseInt64 = __nccwpck_require__(2299);

var parseBits = function(data, bits, offset, invert, callback) {
  offset = offset || 0;
  invert = invert || false;
  callback = callback || function(lastValue, newValue, bits) { return (lastValue * Math.pow(2, bits)) + newValue; };
  var offsetBytes = offset >> 3;

  var inv = function(value) {
    if (invert) {
      return ~value & 0xff;
    }

    return value;
  };

  // read first (maybe partial) byte
  var mask = 0xff;
  var firstBits = 8 - (offset % 8);
  if (bits < firstBits) {
    mask = (0xff << (8 - bits)) & 0xff;
    firstBits = bits;
  }

  if (offset) {
    mask = mask >> (offset % 8);
  }

  var result = 0;
  if ((offset % 8) + bits >= 8) {
    result = callback(0, inv(data[offsetBytes]) & mask, firstBits);
  }

  // read bytes
  var bytes = (bits + offset) >> 3;
  for (var i = offsetBytes + 1; i < bytes; i++) {
    result = callback(result, inv(data[i]), 8);
  }

  // bits to read, that are not a complete byte
  var lastBits = (bits + offset) % 8;
  if (lastBits > 0) {
    result = callback(result, inv(data[bytes]) >> (8 - lastBits), lastBits);
  }

  return result;
};

var parseFloatFromBits = function(data, precisionBits, exponentBits) {
  var bias = Math.pow(2, exponentBits - 1) - 1;
  var sign = parseBits(data, 1);
  var exponent = parseBits(data, exponentBits, 1);

  if (exponent === 0) {
    return 0;
  }

  // parse mantissa
  var precisionBitsCounter = 1;
  var parsePrecisionBits = function(lastValue, newValue, bits) {
    if (lastValue === 0) {
      lastValue = 1;
    }

    for (var i = 1; i <= bits; i++) {
      precisionBitsCounter /= 2;
      if ((newValue & (0x1 << (bits - i))) > 0) {
        lastValue += precisionBitsCounter;
      }
    }

    return lastValue;
  };

  var mantissa = parseBits(data, precisionBits, exponentBits + 1, false, parsePrecisionBits);

  // special cases
  if (exponent == (Math.pow(2, exponentBits + 1) - 1)) {
    if (mantissa === 0) {
      return (sign === 0) ? Infinity : -Infinity;
    }

    return NaN;
  }

  // normale number
  return ((sign === 0) ? 1 : -1) * Math.pow(2, exponent - bias) * mantissa;
};

var parseInt16 = function(value) {
  if (parseBits(value, 1) == 1) {
    return -1 * (parseBits(value, 15, 1, true) + 1);
  }

  return parseBits(value, 15, 1);
};

var parseInt32 = function(value) {
  if (parseBits(value, 1) == 1) {
    return -1 * (parseBits(value, 31, 1, true) + 1);
  }

  return parseBits(value, 31, 1);
};

var parseFloat32 = function(value) {
  return parseFloatFromBits(value, 23, 8);
};

var parseFloat64 = function(value) {
  return parseFloatFromBits(value, 52, 11);
};

var parseNumeric = function(value) {
  var sign = parseBits(value, 16, 32);
  if (sign == 0xc000) {
    return NaN;
  }

  var weight = Math.pow(10000, parseBits(value, 16, 16));
  var result = 0;

  var digits = [];
  var ndigits = parseBits(value, 16);
  for (var i = 0; i < ndigits; i++) {
    result += parseBits(value, 16, 64 + (16 * i)) * weight;
    weight /= 10000;
  }

  var scale = Math.pow(10, parseBits(value, 16, 48));
  return ((sign === 0) ? 1 : -1) * Math.round(result * scale) / scale;
};

var parseDate = function(isUTC, value) {
  var sign = parseBits(value, 1);
  var rawValue = parseBits(value, 63, 1);

  // discard usecs and shift from 2000 to 1970
  var result = new Date((((sign === 0) ? 1 : -1) * rawValue / 1000) + 946684800000);

  if (!isUTC) {
    result.setTime(result.getTime() + result.getTimezoneOffset() * 60000);
  }

  // add microseconds to the date
  result.usec = rawValue % 1000;
  result.getMicroSeconds = function() {
    return this.usec;
  };
  result.setMicroSeconds = function(value) {
    this.usec = value;
  };
  result.getUTCMicroSeconds = function() {
    return this.usec;
  };

  return result;
};

var parseArray = function(value) {
  var dim = parseBits(value, 32);

  var flags = parseBits(value, 32, 32);
  var elementType = parseBits(value, 32, 64);

  var offset = 96;
  var dims = [];
  for (var i = 0; i < dim; i++) {
    // parse dimension
    dims[i] = parseBits(value, 32, offset);
    offset += 32;

    // ignore lower bounds
    offset += 32;
  }

  var parseElement = function(elementType) {
    // parse content length
    var length = parseBits(value, 32, offset);
    offset += 32;

    // parse null values
    if (length == 0xffffffff) {
      return null;
    }

    var result;
    if ((elementType == 0x17) || (elementType == 0x14)) {
      // int/bigint
      result = parseBits(value, length * 8, offset);
      offset += length * 8;
      return result;
    }
    else if (elementType == 0x19) {
      // string
      result = value.toString(this.encoding, offset >> 3, (offset += (length << 3)) >> 3);
      return result;
    }
    else {
      console.log("ERROR: ElementType not implemented: " + elementType);
    }
  };

  var parse = function(dimension, elementType) {
    var array = [];
    var i;

    if (dimension.length > 1) {
      var count = dimension.shift();
      for (i = 0; i < count; i++) {
        array[i] = parse(dimension, elementType);
      }
      dimension.unshift(count);
    }
    else {
      for (i = 0; i < dimension[0]; i++) {
        array[i] = parseElement(elementType);
      }
    }

    return array;
  };

  return parse(dims, elementType);
};

var parseText = function(value) {
  return value.toString('utf8');
};

var parseBool = function(value) {
  if(value === null) return null;
  return (parseBits(value, 8) > 0);
};

var init = function(register) {
  register(20, parseInt64);
  register(21, parseInt16);
  register(23, parseInt32);
  register(26, parseInt32);
  register(1700, parseNumeric);
  register(700, parseFloat32);
  register(701, parseFloat64);
  register(16, parseBool);
  register(1114, parseDate.bind(null, false));
  register(1184, parseDate.bind(null, true));
  register(1000, parseArray);
  register(1007, parseArray);
  register(1016, parseArray);
  register(1008, parseArray);
  register(1009, parseArray);
  register(25, parseText);
};

module.exports = {
  init: init
};


/***/ }),

/***/ 6345:
/***/ ((module) => {

/**
 * Following query was used to generate this file:

 SELECT json_object_agg(UPPER(PT.typname), PT.oid::int4 ORDER BY pt.oid)
 FROM pg_type PT
 WHERE typnamespace = (SELECT pgn.oid FROM pg_namespace pgn WHERE nspname = 'pg_catalog') -- Take only builting Postgres types with stable OID (extension types are not guaranted to be stable)
 AND typtype = 'b' -- Only basic types
 AND typelem = 0 -- Ignore aliases
 AND typisdefined -- Ignore undefined types
 */

module.exports = {
    BOOL: 16,
    BYTEA: 17,
    CHAR: 18,
    INT8: 20,
    INT2: 21,
    INT4: 23,
    REGPROC: 24,
    TEXT: 25,
    OID: 26,
    TID: 27,
    XID: 28,
    CID: 29,
    JSON: 114,
    XML: 142,
    PG_NODE_TREE: 194,
    SMGR: 210,
    PATH: 602,
    POLYGON: 604,
    CIDR: 650,
    FLOAT4: 700,
    FLOAT8: 701,
    ABSTIME: 702,
    RELTIME: 703,
    TINTERVAL: 704,
    CIRCLE: 718,
    MACADDR8: 774,
    MONEY: 790,
    MACADDR: 829,
    INET: 869,
    ACLITEM: 1033,
    BPCHAR: 1042,
    VARCHAR: 1043,
    DATE: 1082,
    TIME: 1083,
    TIMESTAMP: 1114,
    TIMESTAMPTZ: 1184,
    INTERVAL: 1186,
    TIMETZ: 1266,
    BIT: 1560,
    VARBIT: 1562,
    NUMERIC: 1700,
    REFCURSOR: 1790,
    REGPROCEDURE: 2202,
    REGOPER: 2203,
    REGOPERATOR: 2204,
    REGCLASS: 2205,
    REGTYPE: 2206,
    UUID: 2950,
    TXID_SNAPSHOT: 2970,
    PG_LSN: 3220,
    PG_NDISTINCT: 3361,
    PG_DEPENDENCIES: 3402,
    TSVECTOR: 3614,
    TSQUERY: 3615,
    GTSVECTOR: 3642,
    REGCONFIG: 3734,
    REGDICTIONARY: 3769,
    JSONB: 3802,
    REGNAMESPACE: 4089,
    REGROLE: 4096
};


/***/ }),

/***/ 4784:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

var array = __nccwpck_require__(3879)
var arrayParser = __nccwpck_require__(6471);
var parseDate = __nccwpck_require__(2690);
var parseInterval = __nccwpck_require__(8755);
var parseByteA = __nccwpck_require__(463);

function allowNull (fn) {
  return function nullAllowed (value) {
    if (value === null) return value
    return fn(value)
  }
}

function parseBool (value) {
  if (value === null) return value
  return value === 'TRUE' ||
    value === 't' ||
    value === 'true' ||
    value === 'y' ||
    value === 'yes' ||
    value === 'on' ||
    value === '1';
}

function parseBoolArray (value) {
  if (!value) return null
  return array.parse(value, parseBool)
}

function parseBaseTenInt (string) {
  return parseInt(string, 10)
}

function parseIntegerArray (value) {
  if (!value) return null
  return array.parse(value, allowNull(parseBaseTenInt))
}

function parseBigIntegerArray (value) {
  if (!value) return null
  return array.parse(value, allowNull(function (entry) {
    return parseBigInteger(entry).trim()
  }))
}

var parsePointArray = function(value) {
  if(!value) { return null; }
  var p = arrayParser.create(value, function(entry) {
    if(entry !== null) {
      entry = parsePoint(entry);
    }
    return entry;
  });

  return p.parse();
};

var parseFloatArray = function(value) {
  if(!value) { return null; }
  var p = arrayParser.create(value, function(entry) {
    if(entry !== null) {
      entry = parseFloat(entry);
    }
    return entry;
  });

  return p.parse();
};

var parseStringArray = function(value) {
  if(!value) { return null; }

  var p = arrayParser.create(value);
  return p.parse();
};

var parseDateArray = function(value) {
  if (!value) { return null; }

  var p = arrayParser.create(value, function(entry) {
    if (entry !== null) {
      entry = parseDate(entry);
    }
    return entry;
  });

  return p.parse();
};

var parseIntervalArray = function(value) {
  if (!value) { return null; }

  var p = arrayParser.create(value, function(entry) {
    if (entry !== null) {
      entry = parseInterval(entry);
    }
    return entry;
  });

  return p.parse();
};

var parseByteAArray = function(value) {
  if (!value) { return null; }

  return array.parse(value, allowNull(parseByteA));
};

var parseInteger = function(value) {
  return parseInt(value, 10);
};

var parseBigInteger = function(value) {
  var valStr = String(value);
  if (/^\d+$/.test(valStr)) { return valStr; }
  return value;
};

var parseJsonArray = function(value) {
  if (!value) { return null; }

  return array.parse(value, allowNull(JSON.parse));
};

var parsePoint = function(value) {
  if (value[0] !== '(') { return null; }

  value = value.substring( 1, value.length - 1 ).split(',');

  return {
    x: parseFloat(value[0])
  , y: parseFloat(value[1])
  };
};

var parseCircle = function(value) {
  if (value[0] !== '<' && value[1] !== '(') { return null; }

  var point = '(';
  var radius = '';
  var pointParsed = false;
  for (var i = 2; i < value.length - 1; i++){
    if (!pointParsed) {
      point += value[i];
    }

    if (value[i] === ')') {
      pointParsed = true;
      continue;
    } else if (!pointParsed) {
      continue;
    }

    if (value[i] === ','){
      continue;
    }

    radius += value[i];
  }
  var result = parsePoint(point);
  result.radius = parseFloat(radius);

  return result;
};

var init = function(register) {
  register(20, parseBigInteger); // int8
  register(21, parseInteger); // int2
  register(23, parseInteger); // int4
  register(26, parseInteger); // oid
  register(700, parseFloat); // float4/real
  register(701, parseFloat); // float8/double
  register(16, parseBool);
  register(1082, parseDate); // date
  register(1114, parseDate); // timestamp without timezone
  register(1184, parseDate); // timestamp
  register(600, parsePoint); // point
  register(651, parseStringArray); // cidr[]
  register(718, parseCircle); // circle
  register(1000, parseBoolArray);
  register(1001, parseByteAArray);
  register(1005, parseIntegerArray); // _int2
  register(1007, parseIntegerArray); // _int4
  register(1028, parseIntegerArray); // oid[]
  register(1016, parseBigIntegerArray); // _int8
  register(1017, parsePointArray); // point[]
  register(1021, parseFloatArray); // _float4
  register(1022, parseFloatArray); // _float8
  register(1231, parseFloatArray); // _numeric
  register(1014, parseStringArray); //char
  register(1015, parseStringArray); //varchar
  register(1008, parseStringArray);
  register(1009, parseStringArray);
  register(1040, parseStringArray); // macaddr[]
  register(1041, parseStringArray); // inet[]
  register(1115, parseDateArray); // timestamp without time zone[]
  register(1182, parseDateArray); // _date
  register(1185, parseDateArray); // timestamp with time zone[]
  register(1186, parseInterval);
  register(1187, parseIntervalArray);
  register(17, parseByteA);
  register(114, JSON.parse.bind(JSON)); // json
  register(3802, JSON.parse.bind(JSON)); // jsonb
  register(199, parseJsonArray); // json[]
  register(3807, parseJsonArray); // jsonb[]
  register(3907, parseStringArray); // numrange[]
  register(2951, parseStringArray); // uuid[]
  register(791, parseStringArray); // money[]
  register(1183, parseStringArray); // time[]
  register(1270, parseStringArray); // timetz[]
};

module.exports = {
  init: init
};


/***/ }),

/***/ 5042:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

const EventEmitter = (__nccwpck_require__(4434).EventEmitter)
const utils = __nccwpck_require__(9652)
const nodeUtils = __nccwpck_require__(9023)
const sasl = __nccwpck_require__(948)
const TypeOverrides = __nccwpck_require__(365)

const ConnectionParameters = __nccwpck_require__(646)
const Query = __nccwpck_require__(4473)
const defaults = __nccwpck_require__(8995)
const Connection = __nccwpck_require__(9809)
const crypto = __nccwpck_require__(4150)

const activeQueryDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Client.activeQuery is deprecated and will be removed in pg@9.0'
)

const queryQueueDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Client.queryQueue is deprecated and will be removed in pg@9.0.'
)

const pgPassDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'pgpass support is deprecated and will be removed in pg@9.0. ' +
    'You can provide an async function as the password property to the Client/Pool constructor that returns a password instead. Within this function you can call the pgpass module in your own code.'
)

const byoPromiseDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Passing a custom Promise implementation to the Client/Pool constructor is deprecated and will be removed in pg@9.0.'
)

const queryQueueLengthDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Calling client.query() when the client is already executing a query is deprecated and will be removed in pg@9.0. Use async/await or an external async flow control mechanism instead.'
)

function coerceNumberOrDefault(value, defaultValue) {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : defaultValue
  }
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value)
    return Number.isFinite(n) ? n : defaultValue
  }
  return defaultValue
}

class Client extends EventEmitter {
  constructor(config) {
    super()

    this.connectionParameters = new ConnectionParameters(config)
    this.user = this.connectionParameters.user
    this.database = this.connectionParameters.database
    this.port = this.connectionParameters.port
    this.host = this.connectionParameters.host

    // "hiding" the password so it doesn't show up in stack traces
    // or if the client is console.logged
    Object.defineProperty(this, 'password', {
      configurable: true,
      enumerable: false,
      writable: true,
      value: this.connectionParameters.password,
    })

    this.replication = this.connectionParameters.replication

    const c = config || {}

    if (c.Promise) {
      byoPromiseDeprecationNotice()
    }
    this._Promise = c.Promise || global.Promise
    this._types = new TypeOverrides(c.types)
    this._ending = false
    this._ended = false
    this._connecting = false
    this._connected = false
    this._connectionError = false
    this._queryable = true
    this._activeQuery = null
    this._txStatus = null

    this.enableChannelBinding = Boolean(c.enableChannelBinding) // set true to use SCRAM-SHA-256-PLUS when offered
    this.scramMaxIterations = coerceNumberOrDefault(c.scramMaxIterations, sasl.DEFAULT_MAX_SCRAM_ITERATIONS)
    this.connection =
      c.connection ||
      new Connection({
        stream: c.stream,
        ssl: this.connectionParameters.ssl,
        sslNegotiation: this.connectionParameters.sslnegotiation,
        keepAlive: c.keepAlive || false,
        keepAliveInitialDelayMillis: c.keepAliveInitialDelayMillis || 0,
        encoding: this.connectionParameters.client_encoding || 'utf8',
      })
    this._queryQueue = []
    this._sentQueryQueue = []
    this.pipeline = Boolean(c.pipeline)
    this.binary = c.binary || defaults.binary
    this.processID = null
    this.secretKey = null
    this.ssl = this.connectionParameters.ssl || false
    this.sslNegotiation = this.connectionParameters.sslnegotiation || 'postgres'
    // As with Password, make SSL->Key (the private key) non-enumerable.
    // It won't show up in stack traces
    // or if the client is console.logged
    if (this.ssl && this.ssl.key) {
      Object.defineProperty(this.ssl, 'key', {
        enumerable: false,
      })
    }

    this._connectionTimeoutMillis = c.connectionTimeoutMillis || 0
  }

  get activeQuery() {
    activeQueryDeprecationNotice()
    return this._activeQuery
  }

  set activeQuery(val) {
    activeQueryDeprecationNotice()
    this._activeQuery = val
  }

  _getActiveQuery() {
    return this._activeQuery
  }

  _errorAllQueries(err) {
    const enqueueError = (query) => {
      process.nextTick(() => {
        query.handleError(err, this.connection)
      })
    }

    const activeQuery = this._getActiveQuery()
    if (activeQuery) {
      enqueueError(activeQuery)
      this._activeQuery = null
    }

    this._sentQueryQueue.forEach(enqueueError)
    this._sentQueryQueue.length = 0

    this._queryQueue.forEach(enqueueError)
    this._queryQueue.length = 0
  }

  _connect(callback) {
    const self = this
    const con = this.connection
    this._connectionCallback = callback

    if (this._connecting || this._connected) {
      const err = new Error('Client has already been connected. You cannot reuse a client.')
      process.nextTick(() => {
        callback(err)
      })
      return
    }
    this._connecting = true

    if (this._connectionTimeoutMillis > 0) {
      this.connectionTimeoutHandle = setTimeout(() => {
        con._ending = true
        con.stream.destroy(new Error('timeout expired'))
      }, this._connectionTimeoutMillis)

      if (this.connectionTimeoutHandle.unref) {
        this.connectionTimeoutHandle.unref()
      }
    }

    if (this.host && this.host.indexOf('/') === 0) {
      con.connect(this.host + '/.s.PGSQL.' + this.port)
    } else {
      con.connect(this.port, this.host)
    }

    // once connection is established send startup message
    con.on('connect', function () {
      if (self.ssl) {
        // With direct SSL negotiation the connection upgrades to TLS without an
        // SSLRequest packet, so the startup message is sent after 'sslconnect'.
        if (self.sslNegotiation !== 'direct') {
          con.requestSsl()
        }
      } else {
        con.startup(self.getStartupConf())
      }
    })

    con.on('sslconnect', function () {
      con.startup(self.getStartupConf())
    })

    this._attachListeners(con)

    con.once('end', () => {
      const error = this._ending ? new Error('Connection terminated') : new Error('Connection terminated unexpectedly')

      clearTimeout(this.connectionTimeoutHandle)
      this._errorAllQueries(error)
      this._ended = true

      if (!this._ending) {
        // if the connection is ended without us calling .end()
        // on this client then we have an unexpected disconnection
        // treat this as an error unless we've already emitted an error
        // during connection.
        if (this._connecting && !this._connectionError) {
          if (this._connectionCallback) {
            this._connectionCallback(error)
          } else {
            this._handleErrorEvent(error)
          }
        } else if (!this._connectionError) {
          this._handleErrorEvent(error)
        }
      }

      process.nextTick(() => {
        this.emit('end')
      })
    })
  }

  connect(callback) {
    if (callback) {
      this._connect(callback)
      return
    }

    return new this._Promise((resolve, reject) => {
      this._connect((error) => {
        if (error) {
          reject(error)
        } else {
          resolve(this)
        }
      })
    })
  }

  _attachListeners(con) {
    // password request handling
    con.on('authenticationCleartextPassword', this._handleAuthCleartextPassword.bind(this))
    // password request handling
    con.on('authenticationMD5Password', this._handleAuthMD5Password.bind(this))
    // password request handling (SASL)
    con.on('authenticationSASL', this._handleAuthSASL.bind(this))
    con.on('authenticationSASLContinue', this._handleAuthSASLContinue.bind(this))
    con.on('authenticationSASLFinal', this._handleAuthSASLFinal.bind(this))
    con.on('backendKeyData', this._handleBackendKeyData.bind(this))
    con.on('error', this._handleErrorEvent.bind(this))
    con.on('errorMessage', this._handleErrorMessage.bind(this))
    con.on('readyForQuery', this._handleReadyForQuery.bind(this))
    con.on('notice', this._handleNotice.bind(this))
    con.on('rowDescription', this._handleRowDescription.bind(this))
    con.on('dataRow', this._handleDataRow.bind(this))
    con.on('portalSuspended', this._handlePortalSuspended.bind(this))
    con.on('emptyQuery', this._handleEmptyQuery.bind(this))
    con.on('commandComplete', this._handleCommandComplete.bind(this))
    con.on('parseComplete', this._handleParseComplete.bind(this))
    con.on('copyInResponse', this._handleCopyInResponse.bind(this))
    con.on('copyData', this._handleCopyData.bind(this))
    con.on('notification', this._handleNotification.bind(this))
  }

  _getPassword(cb) {
    const con = this.connection
    if (typeof this.password === 'function') {
      this._Promise
        .resolve()
        .then(() => this.password(this.connectionParameters))
        .then((pass) => {
          if (pass !== undefined) {
            if (typeof pass !== 'string') {
              con.emit('error', new TypeError('Password must be a string'))
              return
            }
            this.connectionParameters.password = this.password = pass
          } else {
            this.connectionParameters.password = this.password = null
          }
          cb()
        })
        .catch((err) => {
          con.emit('error', err)
        })
    } else if (this.password !== null) {
      cb()
    } else {
      try {
        const pgPass = __nccwpck_require__(3272)
        pgPass(this.connectionParameters, (pass) => {
          if (undefined !== pass) {
            pgPassDeprecationNotice()
            this.connectionParameters.password = this.password = pass
          }
          cb()
        })
      } catch (e) {
        this.emit('error', e)
      }
    }
  }

  _handleAuthCleartextPassword(msg) {
    this._getPassword(() => {
      this.connection.password(this.password)
    })
  }

  _handleAuthMD5Password(msg) {
    this._getPassword(async () => {
      try {
        const hashedPassword = await crypto.postgresMd5PasswordHash(this.user, this.password, msg.salt)
        this.connection.password(hashedPassword)
      } catch (e) {
        this.emit('error', e)
      }
    })
  }

  _handleAuthSASL(msg) {
    this._getPassword(() => {
      try {
        this.saslSession = sasl.startSession(
          msg.mechanisms,
          this.enableChannelBinding && this.connection.stream,
          this.scramMaxIterations
        )
        this.connection.sendSASLInitialResponseMessage(this.saslSession.mechanism, this.saslSession.response)
      } catch (err) {
        this.connection.emit('error', err)
      }
    })
  }

  async _handleAuthSASLContinue(msg) {
    try {
      await sasl.continueSession(
        this.saslSession,
        this.password,
        msg.data,
        this.enableChannelBinding && this.connection.stream
      )
      this.connection.sendSCRAMClientFinalMessage(this.saslSession.response)
    } catch (err) {
      this.connection.emit('error', err)
    }
  }

  _handleAuthSASLFinal(msg) {
    try {
      sasl.finalizeSession(this.saslSession, msg.data)
      this.saslSession = null
    } catch (err) {
      this.connection.emit('error', err)
    }
  }

  _handleBackendKeyData(msg) {
    this.processID = msg.processID
    this.secretKey = msg.secretKey
  }

  _handleReadyForQuery(msg) {
    if (this._connecting) {
      this._connecting = false
      this._connected = true
      clearTimeout(this.connectionTimeoutHandle)

      // process possible callback argument to Client#connect
      if (this._connectionCallback) {
        this._connectionCallback(null, this)
        // remove callback for proper error handling
        // after the connect event
        this._connectionCallback = null
      }
      this.emit('connect')
    }
    const activeQuery = this._getActiveQuery()
    this._activeQuery = null
    this._txStatus = msg?.status ?? null
    this.readyForQuery = true
    if (activeQuery) {
      activeQuery.handleReadyForQuery(this.connection)
    }
    this._pulseQueryQueue()
  }

  // if we receive an error event or error message
  // during the connection process we handle it here
  _handleErrorWhileConnecting(err) {
    if (this._connectionError) {
      // TODO(bmc): this is swallowing errors - we shouldn't do this
      return
    }
    this._connectionError = true
    clearTimeout(this.connectionTimeoutHandle)
    if (this._connectionCallback) {
      return this._connectionCallback(err)
    }
    this.emit('error', err)
  }

  // if we're connected and we receive an error event from the connection
  // this means the socket is dead - do a hard abort of all queries and emit
  // the socket error on the client as well
  _handleErrorEvent(err) {
    if (this._connecting) {
      return this._handleErrorWhileConnecting(err)
    }
    this._queryable = false
    this._errorAllQueries(err)
    this.emit('error', err)
  }

  // handle error messages from the postgres backend
  _handleErrorMessage(msg) {
    if (this._connecting) {
      return this._handleErrorWhileConnecting(msg)
    }
    const activeQuery = this._getActiveQuery()

    if (!activeQuery) {
      this._handleErrorEvent(msg)
      return
    }

    this._activeQuery = null
    if (activeQuery.name) {
      delete this.connection.submittedNamedStatements[activeQuery.name]
    }
    activeQuery.handleError(msg, this.connection)
  }

  _handleRowDescription(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected rowDescription message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // delegate rowDescription to active query
    activeQuery.handleRowDescription(msg)
  }

  _handleDataRow(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected dataRow message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // delegate dataRow to active query
    activeQuery.handleDataRow(msg)
  }

  _handlePortalSuspended(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected portalSuspended message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // delegate portalSuspended to active query
    activeQuery.handlePortalSuspended(this.connection)
  }

  _handleEmptyQuery(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected emptyQuery message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // delegate emptyQuery to active query
    activeQuery.handleEmptyQuery(this.connection)
  }

  _handleCommandComplete(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected commandComplete message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // delegate commandComplete to active query
    activeQuery.handleCommandComplete(msg, this.connection)
  }

  _handleParseComplete() {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected parseComplete message from backend.')
      this._handleErrorEvent(error)
      return
    }
    // if a prepared statement has a name and properly parses
    // we track that its already been executed so we don't parse
    // it again on the same client
    if (activeQuery.name) {
      this.connection.parsedStatements[activeQuery.name] = activeQuery.text
      delete this.connection.submittedNamedStatements[activeQuery.name]
    }
  }

  _handleCopyInResponse(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected copyInResponse message from backend.')
      this._handleErrorEvent(error)
      return
    }
    activeQuery.handleCopyInResponse(this.connection)
  }

  _handleCopyData(msg) {
    const activeQuery = this._getActiveQuery()
    if (activeQuery == null) {
      const error = new Error('Received unexpected copyData message from backend.')
      this._handleErrorEvent(error)
      return
    }
    activeQuery.handleCopyData(msg, this.connection)
  }

  _handleNotification(msg) {
    this.emit('notification', msg)
  }

  _handleNotice(msg) {
    this.emit('notice', msg)
  }

  getStartupConf() {
    const params = this.connectionParameters

    const data = {
      user: params.user,
      database: params.database,
    }

    const appName = params.application_name || params.fallback_application_name
    if (appName) {
      data.application_name = appName
    }
    if (params.replication) {
      data.replication = '' + params.replication
    }
    if (params.statement_timeout) {
      data.statement_timeout = String(parseInt(params.statement_timeout, 10))
    }
    if (params.lock_timeout) {
      data.lock_timeout = String(parseInt(params.lock_timeout, 10))
    }
    if (params.idle_in_transaction_session_timeout) {
      data.idle_in_transaction_session_timeout = String(parseInt(params.idle_in_transaction_session_timeout, 10))
    }
    if (params.options) {
      data.options = params.options
    }

    return data
  }

  cancel(client, query) {
    if (client.activeQuery === query) {
      const con = this.connection

      if (this.host && this.host.indexOf('/') === 0) {
        con.connect(this.host + '/.s.PGSQL.' + this.port)
      } else {
        con.connect(this.port, this.host)
      }

      // once connection is established send cancel message
      con.on('connect', function () {
        con.cancel(client.processID, client.secretKey)
      })
    } else if (client._queryQueue.indexOf(query) !== -1) {
      client._queryQueue.splice(client._queryQueue.indexOf(query), 1)
    } else if (client._sentQueryQueue.indexOf(query) !== -1) {
      // Query already sent on wire — can't remove it without corrupting the
      // pipeline. No-op the callback so the result is silently discarded.
      query.callback = () => {}
    }
  }

  setTypeParser(oid, format, parseFn) {
    return this._types.setTypeParser(oid, format, parseFn)
  }

  getTypeParser(oid, format) {
    return this._types.getTypeParser(oid, format)
  }

  // escapeIdentifier and escapeLiteral moved to utility functions & exported
  // on PG
  // re-exported here for backwards compatibility
  escapeIdentifier(str) {
    return utils.escapeIdentifier(str)
  }

  escapeLiteral(str) {
    return utils.escapeLiteral(str)
  }

  _pulseQueryQueue() {
    if (this.pipeline) {
      this._pulsePipelinedQueryQueue()
      return
    }
    if (this.readyForQuery === true) {
      this._activeQuery = this._queryQueue.shift()
      const activeQuery = this._getActiveQuery()
      if (activeQuery) {
        this.readyForQuery = false
        this.hasExecuted = true

        const queryError = activeQuery.submit(this.connection)
        if (queryError) {
          process.nextTick(() => {
            activeQuery.handleError(queryError, this.connection)
            this.readyForQuery = true
            this._pulseQueryQueue()
          })
        }
      } else if (this.hasExecuted) {
        this._activeQuery = null
        this.emit('drain')
      }
    }
  }

  _pulsePipelinedQueryQueue() {
    if (!this._connected || !this._queryable) {
      return
    }
    while (this._queryQueue.length > 0) {
      const query = this._queryQueue.shift()
      this.hasExecuted = true
      const queryError = query.submit(this.connection)
      if (queryError) {
        process.nextTick(() => {
          query.handleError(queryError, this.connection)
        })
        continue
      }
      this._sentQueryQueue.push(query)
    }
    if (this.readyForQuery && !this._activeQuery && this._sentQueryQueue.length > 0) {
      this._activeQuery = this._sentQueryQueue.shift()
      this.readyForQuery = false
    }
    if (!this._activeQuery && this._sentQueryQueue.length === 0 && this._queryQueue.length === 0 && this.hasExecuted) {
      this.emit('drain')
    }
  }

  query(config, values, callback) {
    // can take in strings, config object or query object
    let query
    let result

    if (config == null) {
      throw new TypeError('Client was passed a null or undefined query')
    }

    if (typeof config.submit === 'function') {
      result = query = config
      if (!query.callback) {
        if (typeof values === 'function') {
          query.callback = values
        } else if (callback) {
          query.callback = callback
        }
      }
    } else {
      query = new Query(config, values, callback)
      if (!query.callback) {
        result = new this._Promise((resolve, reject) => {
          query.callback = (err, res) => (err ? reject(err) : resolve(res))
        }).catch((err) => {
          // replace the stack trace that leads to `TCP.onStreamRead` with one that leads back to the
          // application that created the query
          Error.captureStackTrace(err)
          throw err
        })
      } else if (typeof query.callback !== 'function') {
        throw new TypeError('callback is not a function')
      }
    }

    const readTimeout = config.query_timeout || this.connectionParameters.query_timeout
    if (readTimeout) {
      const queryCallback = query.callback || (() => {})

      const readTimeoutTimer = setTimeout(() => {
        const error = new Error('Query read timeout')

        process.nextTick(() => {
          query.handleError(error, this.connection)
        })

        queryCallback(error)

        // we already returned an error,
        // just do nothing if query completes
        query.callback = () => {}

        // Remove from queue (only safe if not yet sent)
        const index = this._queryQueue.indexOf(query)
        if (index > -1) {
          this._queryQueue.splice(index, 1)
        } else if (this.pipeline) {
          // Query already sent — the pipeline is blocked until it completes.
          // Destroy the connection to unblock all remaining pipelined queries.
          this.connection.stream.destroy()
          return
        }

        this._pulseQueryQueue()
      }, readTimeout)

      query.callback = (err, res) => {
        clearTimeout(readTimeoutTimer)
        queryCallback(err, res)
      }
    }

    if (this.binary && !query.binary) {
      query.binary = true
    }

    if (query._result && !query._result._types) {
      query._result._types = this._types
    }

    // A query that keeps a portal open across round trips cannot share a pipelined connection: the
    // queries written behind it are answered out of its portal, so rows land on the wrong query and
    // the reads that follow fail with 'portal does not exist'. Refuse it instead of corrupting.
    if (this.pipeline) {
      const portalQuery =
        typeof config.submit === 'function' && !(query instanceof Query)
          ? 'Custom query classes such as pg-cursor and pg-query-stream are'
          : query.rows
          ? 'The `rows` option is'
          : null
      if (portalQuery) {
        process.nextTick(() => {
          query.handleError(new Error(`${portalQuery} not supported in pipeline mode`), this.connection)
        })
        return result
      }
    }

    if (!this._queryable) {
      process.nextTick(() => {
        query.handleError(new Error('Client has encountered a connection error and is not queryable'), this.connection)
      })
      return result
    }

    if (this._ending) {
      process.nextTick(() => {
        query.handleError(new Error('Client was closed and is not queryable'), this.connection)
      })
      return result
    }

    if (this._queryQueue.length > 0 && !this.pipeline) {
      queryQueueLengthDeprecationNotice()
    }
    this._queryQueue.push(query)
    this._pulseQueryQueue()
    return result
  }

  ref() {
    this.connection.ref()
  }

  unref() {
    this.connection.unref()
  }

  getTransactionStatus() {
    return this._txStatus
  }

  end(cb) {
    this._ending = true

    // if we have never connected, then end is a noop, callback immediately
    if (!this.connection._connecting || this._ended) {
      if (cb) {
        cb()
        return
      } else {
        return this._Promise.resolve()
      }
    }

    if (!this._queryable) {
      // socket is dead — force close
      this.connection.stream.destroy()
    } else if (
      this.pipeline &&
      (this._getActiveQuery() || this._sentQueryQueue.length > 0 || this._queryQueue.length > 0)
    ) {
      // pipelined queries are already on the wire (or queued to send) and will
      // complete normally; wait for drain then do a graceful goodbye
      this.once('drain', () => this.connection.end())
    } else if (this._getActiveQuery()) {
      // non-pipeline: a hung query could block end forever — force disconnect
      this.connection.stream.destroy()
    } else {
      this.connection.end()
    }

    if (cb) {
      this.connection.once('end', cb)
    } else {
      return new this._Promise((resolve) => {
        this.connection.once('end', resolve)
      })
    }
  }
  get queryQueue() {
    queryQueueDeprecationNotice()
    return this._queryQueue
  }
}

// expose a Query constructor
Client.Query = Query

module.exports = Client


/***/ }),

/***/ 646:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const dns = __nccwpck_require__(2250)

const defaults = __nccwpck_require__(8995)

const parse = (__nccwpck_require__(6122).parse) // parses a connection string

const val = function (key, config, envVar) {
  if (config[key]) {
    return config[key]
  }

  if (envVar === undefined) {
    envVar = process.env['PG' + key.toUpperCase()]
  } else if (envVar === false) {
    // do nothing ... use false
  } else {
    envVar = process.env[envVar]
  }

  return envVar || defaults[key]
}

const readSSLConfigFromEnvironment = function () {
  switch (process.env.PGSSLMODE) {
    case 'disable':
      return false
    case 'prefer':
    case 'require':
    case 'verify-ca':
    case 'verify-full':
      return true
    case 'no-verify':
      return { rejectUnauthorized: false }
  }
  return defaults.ssl
}

// Convert arg to a string, surround in single quotes, and escape single quotes and backslashes
const quoteParamValue = function (value) {
  return "'" + ('' + value).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'"
}

const add = function (params, config, paramName) {
  const value = config[paramName]
  if (value !== undefined && value !== null) {
    params.push(paramName + '=' + quoteParamValue(value))
  }
}

class ConnectionParameters {
  constructor(config) {
    // if a string is passed, it is a raw connection string so we parse it into a config
    config = typeof config === 'string' ? parse(config) : config || {}

    // if the config has a connectionString defined, parse IT into the config we use
    // this will override other default values with what is stored in connectionString
    if (config.connectionString) {
      config = Object.assign({}, config, parse(config.connectionString))
    }

    this.user = val('user', config)
    this.database = val('database', config)

    if (this.database === undefined) {
      this.database = this.user
    }

    this.port = parseInt(val('port', config), 10)
    this.host = val('host', config)

    // "hiding" the password so it doesn't show up in stack traces
    // or if the client is console.logged
    Object.defineProperty(this, 'password', {
      configurable: true,
      enumerable: false,
      writable: true,
      value: val('password', config),
    })

    this.binary = val('binary', config)
    this.options = val('options', config)

    this.ssl = typeof config.ssl === 'undefined' ? readSSLConfigFromEnvironment() : config.ssl

    if (typeof this.ssl === 'string') {
      if (this.ssl === 'true') {
        this.ssl = true
      }
    }
    // support passing in ssl=no-verify via connection string
    if (this.ssl === 'no-verify') {
      this.ssl = { rejectUnauthorized: false }
    }
    if (this.ssl && this.ssl.key) {
      Object.defineProperty(this.ssl, 'key', {
        enumerable: false,
      })
    }

    // How to negotiate SSL: 'postgres' (default, the traditional SSLRequest
    // handshake) or 'direct' (start the TLS handshake immediately on connect).
    this.sslnegotiation = val('sslnegotiation', config, 'PGSSLNEGOTIATION')
    if (this.sslnegotiation !== undefined && this.sslnegotiation !== 'postgres' && this.sslnegotiation !== 'direct') {
      throw new Error(
        `Invalid sslnegotiation value: "${this.sslnegotiation}". Valid values are "postgres" and "direct".`
      )
    }
    if (this.sslnegotiation === 'direct' && !this.ssl) {
      throw new Error('sslnegotiation=direct requires SSL to be enabled')
    }

    this.client_encoding = val('client_encoding', config)
    this.replication = val('replication', config)
    // a domain socket begins with '/'
    this.isDomainSocket = !(this.host || '').indexOf('/')

    this.application_name = val('application_name', config, 'PGAPPNAME')
    this.fallback_application_name = val('fallback_application_name', config, false)
    this.statement_timeout = val('statement_timeout', config, false)
    this.lock_timeout = val('lock_timeout', config, false)
    this.idle_in_transaction_session_timeout = val('idle_in_transaction_session_timeout', config, false)
    this.query_timeout = val('query_timeout', config, false)

    if (config.connectionTimeoutMillis === undefined) {
      this.connect_timeout = process.env.PGCONNECT_TIMEOUT || 0
    } else {
      this.connect_timeout = Math.floor(config.connectionTimeoutMillis / 1000)
    }

    if (config.keepAlive === false) {
      this.keepalives = 0
    } else if (config.keepAlive === true) {
      this.keepalives = 1
    }

    if (typeof config.keepAliveInitialDelayMillis === 'number') {
      this.keepalives_idle = Math.floor(config.keepAliveInitialDelayMillis / 1000)
    }
  }

  getLibpqConnectionString(cb) {
    const params = []
    add(params, this, 'user')
    add(params, this, 'password')
    add(params, this, 'port')
    add(params, this, 'application_name')
    add(params, this, 'fallback_application_name')
    add(params, this, 'connect_timeout')
    add(params, this, 'options')

    const ssl = typeof this.ssl === 'object' ? this.ssl : this.ssl ? { sslmode: this.ssl } : {}
    add(params, ssl, 'sslmode')
    add(params, ssl, 'sslca')
    add(params, ssl, 'sslkey')
    add(params, ssl, 'sslcert')
    add(params, ssl, 'sslrootcert')
    add(params, this, 'sslnegotiation')

    if (this.database) {
      params.push('dbname=' + quoteParamValue(this.database))
    }
    if (this.replication) {
      params.push('replication=' + quoteParamValue(this.replication))
    }
    if (this.host) {
      params.push('host=' + quoteParamValue(this.host))
    }
    if (this.isDomainSocket) {
      return cb(null, params.join(' '))
    }
    if (this.client_encoding) {
      params.push('client_encoding=' + quoteParamValue(this.client_encoding))
    }
    dns.lookup(this.host, function (err, address) {
      if (err) return cb(err, null)
      params.push('hostaddr=' + quoteParamValue(address))
      return cb(null, params.join(' '))
    })
  }
}

module.exports = ConnectionParameters


/***/ }),

/***/ 9809:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const EventEmitter = (__nccwpck_require__(4434).EventEmitter)

const { parse, serialize } = __nccwpck_require__(4233)
const stream = __nccwpck_require__(829)
const { getStream } = stream

const flushBuffer = serialize.flush()
const syncBuffer = serialize.sync()
const endBuffer = serialize.end()

// TODO(bmc) support binary mode at some point
class Connection extends EventEmitter {
  constructor(config) {
    super()
    config = config || {}

    this.stream = config.stream || getStream(config.ssl)
    if (typeof this.stream === 'function') {
      this.stream = this.stream(config)
    }

    this._keepAlive = config.keepAlive
    this._keepAliveInitialDelayMillis = config.keepAliveInitialDelayMillis
    this.parsedStatements = {}
    this.submittedNamedStatements = {}
    this.ssl = config.ssl || false
    this.sslNegotiation = config.sslNegotiation || 'postgres'
    this._ending = false
    this._emitMessage = false
    const self = this
    this.on('newListener', function (eventName) {
      if (eventName === 'message') {
        self._emitMessage = true
      }
    })
  }

  connect(port, host) {
    const self = this

    this._connecting = true
    this.stream.setNoDelay(true)
    this.stream.connect(port, host)

    this.stream.once('connect', function () {
      if (self._keepAlive) {
        self.stream.setKeepAlive(true, self._keepAliveInitialDelayMillis)
      }
      self.emit('connect')
    })

    const reportStreamError = function (error) {
      // errors about disconnections should be ignored during disconnect
      if (self._ending && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
        return
      }
      self.emit('error', error)
    }
    this.stream.on('error', reportStreamError)

    this.stream.on('close', function () {
      self.emit('end')
    })

    if (!this.ssl) {
      return this.attachListeners(this.stream)
    }

    // With direct SSL negotiation the TLS handshake starts immediately on the
    // raw socket, skipping the SSLRequest packet and the server's 'S'/'N' reply.
    if (this.sslNegotiation === 'direct') {
      return this.stream.once('connect', function () {
        self.upgradeToSSL(host, reportStreamError)
      })
    }

    this.stream.once('data', function (buffer) {
      const responseCode = buffer.toString('utf8')
      switch (responseCode) {
        case 'S': // Server supports SSL connections, continue with a secure connection
          break
        case 'N': // Server does not support SSL connections
          self.stream.end()
          return self.emit('error', new Error('The server does not support SSL connections'))
        default:
          // Any other response byte, including 'E' (ErrorResponse) indicating a server error
          self.stream.end()
          return self.emit('error', new Error('There was an error establishing an SSL connection'))
      }
      self.upgradeToSSL(host, reportStreamError)
    })
  }

  upgradeToSSL(host, reportStreamError) {
    const self = this
    const options = {
      socket: self.stream,
      // tls.connect checks the server identity against `servername`, falling
      // back to `host` and then to 'localhost'. `servername` must stay unset
      // for IP addresses (see below), so `host` is needed to keep certificate
      // validation working when connecting to an IP address.
      host,
    }

    if (self.ssl !== true) {
      Object.assign(options, self.ssl)

      if ('key' in self.ssl) {
        options.key = self.ssl.key
      }
    }

    // Direct SSL negotiation requires ALPN so the server can confirm it is
    // speaking the PostgreSQL protocol over the TLS connection.
    if (self.sslNegotiation === 'direct') {
      options.ALPNProtocols = ['postgresql']
    }

    // SNI must not be set to an IP address (RFC 6066 section 3)
    const net = __nccwpck_require__(9278)
    if (net.isIP && net.isIP(host) === 0) {
      options.servername = host
    }
    try {
      self.stream = stream.getSecureStream(options)
    } catch (err) {
      return self.emit('error', err)
    }
    self.attachListeners(self.stream)
    self.stream.on('error', reportStreamError)

    self.emit('sslconnect')
  }

  attachListeners(stream) {
    parse(stream, (msg) => {
      const eventName = msg.name === 'error' ? 'errorMessage' : msg.name
      if (this._emitMessage) {
        this.emit('message', msg)
      }
      this.emit(eventName, msg)
    })
  }

  requestSsl() {
    this.stream.write(serialize.requestSsl())
  }

  startup(config) {
    this.stream.write(serialize.startup(config))
  }

  cancel(processID, secretKey) {
    this._send(serialize.cancel(processID, secretKey))
  }

  password(password) {
    this._send(serialize.password(password))
  }

  sendSASLInitialResponseMessage(mechanism, initialResponse) {
    this._send(serialize.sendSASLInitialResponseMessage(mechanism, initialResponse))
  }

  sendSCRAMClientFinalMessage(additionalData) {
    this._send(serialize.sendSCRAMClientFinalMessage(additionalData))
  }

  _send(buffer) {
    if (!this.stream.writable) {
      return false
    }
    return this.stream.write(buffer)
  }

  query(text) {
    this._send(serialize.query(text))
  }

  // send parse message
  parse(query) {
    this._send(serialize.parse(query))
  }

  // send bind message
  bind(config) {
    this._send(serialize.bind(config))
  }

  // send execute message
  execute(config) {
    this._send(serialize.execute(config))
  }

  flush() {
    if (this.stream.writable) {
      this.stream.write(flushBuffer)
    }
  }

  sync() {
    // Sync is the extended-query protocol barrier, not a disconnect.
    // Only end()/Terminate (and connect-timeout teardown) should set _ending.
    this._send(syncBuffer)
  }

  ref() {
    this.stream.ref()
  }

  unref() {
    this.stream.unref()
  }

  end() {
    // 0x58 = 'X'
    this._ending = true
    if (!this._connecting || !this.stream.writable) {
      this.stream.end()
      return
    }
    return this.stream.write(endBuffer, () => {
      this.stream.end()
    })
  }

  close(msg) {
    this._send(serialize.close(msg))
  }

  describe(msg) {
    this._send(serialize.describe(msg))
  }

  sendCopyFromChunk(chunk) {
    this._send(serialize.copyData(chunk))
  }

  endCopyFrom() {
    this._send(serialize.copyDone())
  }

  sendCopyFail(msg) {
    this._send(serialize.copyFail(msg))
  }
}

module.exports = Connection


/***/ }),

/***/ 9765:
/***/ ((module) => {

function x509Error(msg, cert) {
  return new Error('SASL channel binding: ' + msg + ' when parsing public certificate ' + cert.toString('base64'))
}

function readASN1Length(data, index) {
  let length = data[index++]
  if (length < 0x80) return { length, index }

  const lengthBytes = length & 0x7f
  if (lengthBytes > 4) throw x509Error('bad length', data)

  length = 0
  for (let i = 0; i < lengthBytes; i++) {
    length = (length << 8) | data[index++]
  }

  return { length, index }
}

function readASN1OID(data, index) {
  if (data[index++] !== 0x6) throw x509Error('non-OID data', data) // 6 = OID

  const { length: OIDLength, index: indexAfterOIDLength } = readASN1Length(data, index)
  index = indexAfterOIDLength
  const lastIndex = index + OIDLength

  const byte1 = data[index++]
  let oid = ((byte1 / 40) >> 0) + '.' + (byte1 % 40)

  while (index < lastIndex) {
    // loop over numbers in OID
    let value = 0
    while (index < lastIndex) {
      // loop over bytes in number
      const nextByte = data[index++]
      value = (value << 7) | (nextByte & 0x7f)
      if (nextByte < 0x80) break
    }
    oid += '.' + value
  }

  return { oid, index }
}

function expectASN1Seq(data, index) {
  if (data[index++] !== 0x30) throw x509Error('non-sequence data', data) // 30 = Sequence
  return readASN1Length(data, index)
}

function signatureAlgorithmHashFromCertificate(data, index) {
  // read this thread: https://www.postgresql.org/message-id/17760-b6c61e752ec07060%40postgresql.org
  if (index === undefined) index = 0
  index = expectASN1Seq(data, index).index
  const { length: certInfoLength, index: indexAfterCertInfoLength } = expectASN1Seq(data, index)
  index = indexAfterCertInfoLength + certInfoLength // skip over certificate info
  index = expectASN1Seq(data, index).index // skip over signature length field
  const { oid, index: indexAfterOID } = readASN1OID(data, index)
  switch (oid) {
    // RSA
    case '1.2.840.113549.1.1.4':
      return 'MD5'
    case '1.2.840.113549.1.1.5':
      return 'SHA-1'
    case '1.2.840.113549.1.1.11':
      return 'SHA-256'
    case '1.2.840.113549.1.1.12':
      return 'SHA-384'
    case '1.2.840.113549.1.1.13':
      return 'SHA-512'
    case '1.2.840.113549.1.1.14':
      return 'SHA-224'
    case '1.2.840.113549.1.1.15':
      return 'SHA512-224'
    case '1.2.840.113549.1.1.16':
      return 'SHA512-256'
    // ECDSA
    case '1.2.840.10045.4.1':
      return 'SHA-1'
    case '1.2.840.10045.4.3.1':
      return 'SHA-224'
    case '1.2.840.10045.4.3.2':
      return 'SHA-256'
    case '1.2.840.10045.4.3.3':
      return 'SHA-384'
    case '1.2.840.10045.4.3.4':
      return 'SHA-512'
    // RSASSA-PSS: hash is indicated separately
    case '1.2.840.113549.1.1.10': {
      index = indexAfterOID
      index = expectASN1Seq(data, index).index
      if (data[index++] !== 0xa0) throw x509Error('non-tag data', data) // a0 = constructed tag 0
      index = readASN1Length(data, index).index // skip over tag length field
      index = expectASN1Seq(data, index).index // skip over sequence length field
      const { oid: hashOID } = readASN1OID(data, index)
      switch (hashOID) {
        // standalone hash OIDs
        case '1.2.840.113549.2.5':
          return 'MD5'
        case '1.3.14.3.2.26':
          return 'SHA-1'
        case '2.16.840.1.101.3.4.2.1':
          return 'SHA-256'
        case '2.16.840.1.101.3.4.2.2':
          return 'SHA-384'
        case '2.16.840.1.101.3.4.2.3':
          return 'SHA-512'
      }
      throw x509Error('unknown hash OID ' + hashOID, data)
    }
    // Ed25519 -- see https://github.com/openssl/openssl/issues/15477
    case '1.3.101.110':
    case '1.3.101.112': // ph
      return 'SHA-512'
    // Ed448 -- still not in pg 17.2 (if supported, digest would be SHAKE256 x 64 bytes)
    case '1.3.101.111':
    case '1.3.101.113': // ph
      throw x509Error('Ed448 certificate channel binding is not currently supported by Postgres')
  }
  throw x509Error('unknown OID ' + oid, data)
}

module.exports = { signatureAlgorithmHashFromCertificate }


/***/ }),

/***/ 948:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


const crypto = __nccwpck_require__(4150)
const { signatureAlgorithmHashFromCertificate } = __nccwpck_require__(9765)

// SASLprep (RFC 4013) — minimal in-tree implementation.
//
// Per RFC 5802 §2.2, the SCRAM-SHA-256 client must normalize the password via
// SASLprep before feeding it into PBKDF2. PostgreSQL's server applies the same
// SASLprep when computing the stored verifier, and libpq does the same client
// side, so passwords whose NFKC form differs from the raw form
// would otherwise authenticate against psql/libpq but fail against pg with `28P01`.
//
// We deliberately implement only the three steps that change the byte content:
//   1. RFC 3454 Table C.1.2 (non-ASCII space) → U+0020 SPACE.
//   2. RFC 3454 Table B.1 (commonly mapped to nothing) → empty.
//   3. NFKC normalization.
// We skip the prohibition (RFC 4013 §2.3) and bidi (RFC 3454 §6) checks.
// libpq is forgiving on those paths and Postgres's own SASLprep matches that
// leniency for legacy roles, so omitting the rejection logic keeps existing
// roles working without adding complexity.
function saslprep(password) {
  // RFC 3454 Table C.1.2 — non-ASCII space characters, mapped to U+0020.
  const nonAsciiSpace = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g
  // RFC 3454 Table B.1 — "commonly mapped to nothing". The set intentionally
  // contains zero-width joiners and variation selectors — the very characters
  // ESLint's no-misleading-character-class warns about — because they combine
  // with their neighbors and the RFC strips them for that reason.
  // eslint-disable-next-line no-misleading-character-class
  const mappedToNothing = /[\u00AD\u034F\u1806\u180B\u180C\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g
  return password.replace(nonAsciiSpace, ' ').replace(mappedToNothing, '').normalize('NFKC')
}

const DEFAULT_MAX_SCRAM_ITERATIONS = 100000

function startSession(mechanisms, stream, scramMaxIterations = DEFAULT_MAX_SCRAM_ITERATIONS) {
  const candidates = ['SCRAM-SHA-256']
  if (stream) candidates.unshift('SCRAM-SHA-256-PLUS') // higher-priority, so placed first

  const mechanism = candidates.find((candidate) => mechanisms.includes(candidate))

  if (!mechanism) {
    throw new Error('SASL: Only mechanism(s) ' + candidates.join(' and ') + ' are supported')
  }

  if (mechanism === 'SCRAM-SHA-256-PLUS' && typeof stream.getPeerCertificate !== 'function') {
    // this should never happen if we are really talking to a Postgres server
    throw new Error('SASL: Mechanism SCRAM-SHA-256-PLUS requires a certificate')
  }

  const clientNonce = crypto.randomBytes(18).toString('base64')
  const gs2Header = mechanism === 'SCRAM-SHA-256-PLUS' ? 'p=tls-server-end-point' : stream ? 'y' : 'n'

  return {
    mechanism,
    clientNonce,
    response: gs2Header + ',,n=*,r=' + clientNonce,
    message: 'SASLInitialResponse',
    scramMaxIterations,
  }
}

async function continueSession(session, password, serverData, stream) {
  if (session.message !== 'SASLInitialResponse') {
    throw new Error('SASL: Last message was not SASLInitialResponse')
  }
  if (typeof password !== 'string') {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string')
  }
  if (password === '') {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a non-empty string')
  }
  if (typeof serverData !== 'string') {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: serverData must be a string')
  }

  const sv = parseServerFirstMessage(serverData)

  if (!sv.nonce.startsWith(session.clientNonce)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: server nonce does not start with client nonce')
  } else if (sv.nonce.length === session.clientNonce.length) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: server nonce is too short')
  }

  const scramMaxIterations =
    typeof session.scramMaxIterations === 'number' ? session.scramMaxIterations : DEFAULT_MAX_SCRAM_ITERATIONS
  // a value of 0 disables the iteration count check
  if (scramMaxIterations !== 0 && sv.iteration > scramMaxIterations) {
    throw new Error(
      'SASL: SCRAM-SERVER-FIRST-MESSAGE: iteration count ' +
        sv.iteration +
        ' exceeds scramMaxIterations of ' +
        scramMaxIterations
    )
  }

  const clientFirstMessageBare = 'n=*,r=' + session.clientNonce
  const serverFirstMessage = 'r=' + sv.nonce + ',s=' + sv.salt + ',i=' + sv.iteration

  // without channel binding:
  let channelBinding = stream ? 'eSws' : 'biws' // 'y,,' or 'n,,', base64-encoded

  // override if channel binding is in use:
  if (session.mechanism === 'SCRAM-SHA-256-PLUS') {
    const peerCert = stream.getPeerCertificate().raw
    let hashName = signatureAlgorithmHashFromCertificate(peerCert)
    if (hashName === 'MD5' || hashName === 'SHA-1') hashName = 'SHA-256'
    const certHash = await crypto.hashByName(hashName, peerCert)
    const bindingData = Buffer.concat([Buffer.from('p=tls-server-end-point,,'), Buffer.from(certHash)])
    channelBinding = bindingData.toString('base64')
  }

  const clientFinalMessageWithoutProof = 'c=' + channelBinding + ',r=' + sv.nonce
  const authMessage = clientFirstMessageBare + ',' + serverFirstMessage + ',' + clientFinalMessageWithoutProof

  const saltBytes = Buffer.from(sv.salt, 'base64')
  const saltedPassword = await crypto.deriveKey(saslprep(password), saltBytes, sv.iteration)
  const clientKey = await crypto.hmacSha256(saltedPassword, 'Client Key')
  const storedKey = await crypto.sha256(clientKey)
  const clientSignature = await crypto.hmacSha256(storedKey, authMessage)
  const clientProof = xorBuffers(Buffer.from(clientKey), Buffer.from(clientSignature)).toString('base64')
  const serverKey = await crypto.hmacSha256(saltedPassword, 'Server Key')
  const serverSignatureBytes = await crypto.hmacSha256(serverKey, authMessage)

  session.message = 'SASLResponse'
  session.serverSignature = Buffer.from(serverSignatureBytes).toString('base64')
  session.response = clientFinalMessageWithoutProof + ',p=' + clientProof
}

function finalizeSession(session, serverData) {
  if (session.message !== 'SASLResponse') {
    throw new Error('SASL: Last message was not SASLResponse')
  }
  if (typeof serverData !== 'string') {
    throw new Error('SASL: SCRAM-SERVER-FINAL-MESSAGE: serverData must be a string')
  }

  const { serverSignature } = parseServerFinalMessage(serverData)

  if (serverSignature !== session.serverSignature) {
    throw new Error('SASL: SCRAM-SERVER-FINAL-MESSAGE: server signature does not match')
  }
}

/**
 * printable       = %x21-2B / %x2D-7E
 *                   ;; Printable ASCII except ",".
 *                   ;; Note that any "printable" is also
 *                   ;; a valid "value".
 */
function isPrintableChars(text) {
  if (typeof text !== 'string') {
    throw new TypeError('SASL: text must be a string')
  }
  return text
    .split('')
    .map((_, i) => text.charCodeAt(i))
    .every((c) => (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x7e))
}

/**
 * base64-char     = ALPHA / DIGIT / "/" / "+"
 *
 * base64-4        = 4base64-char
 *
 * base64-3        = 3base64-char "="
 *
 * base64-2        = 2base64-char "=="
 *
 * base64          = *base64-4 [base64-3 / base64-2]
 */
function isBase64(text) {
  return /^(?:[a-zA-Z0-9+/]{4})*(?:[a-zA-Z0-9+/]{2}==|[a-zA-Z0-9+/]{3}=)?$/.test(text)
}

function parseAttributePairs(text) {
  if (typeof text !== 'string') {
    throw new TypeError('SASL: attribute pairs text must be a string')
  }

  return new Map(
    text.split(',').map((attrValue) => {
      if (!/^.=/.test(attrValue)) {
        throw new Error('SASL: Invalid attribute pair entry')
      }
      const name = attrValue[0]
      const value = attrValue.substring(2)
      return [name, value]
    })
  )
}

function parseServerFirstMessage(data) {
  const attrPairs = parseAttributePairs(data)

  const nonce = attrPairs.get('r')
  if (!nonce) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: nonce missing')
  } else if (!isPrintableChars(nonce)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: nonce must only contain printable characters')
  }
  const salt = attrPairs.get('s')
  if (!salt) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: salt missing')
  } else if (!isBase64(salt)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: salt must be base64')
  }
  const iterationText = attrPairs.get('i')
  if (!iterationText) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: iteration missing')
  } else if (!/^[1-9][0-9]*$/.test(iterationText)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: invalid iteration count')
  }
  const iteration = parseInt(iterationText, 10)

  return {
    nonce,
    salt,
    iteration,
  }
}

function parseServerFinalMessage(serverData) {
  const attrPairs = parseAttributePairs(serverData)
  const error = attrPairs.get('e')
  const serverSignature = attrPairs.get('v')

  if (error) {
    throw new Error(`SASL: SCRAM-SERVER-FINAL-MESSAGE: server returned error: "${error}"`)
  }

  if (!serverSignature) {
    throw new Error('SASL: SCRAM-SERVER-FINAL-MESSAGE: server signature is missing')
  } else if (!isBase64(serverSignature)) {
    throw new Error('SASL: SCRAM-SERVER-FINAL-MESSAGE: server signature must be base64')
  }
  return {
    serverSignature,
  }
}

function xorBuffers(a, b) {
  if (!Buffer.isBuffer(a)) {
    throw new TypeError('first argument must be a Buffer')
  }
  if (!Buffer.isBuffer(b)) {
    throw new TypeError('second argument must be a Buffer')
  }
  if (a.length !== b.length) {
    throw new Error('Buffer lengths must match')
  }
  if (a.length === 0) {
    throw new Error('Buffers cannot be empty')
  }
  return Buffer.from(a.map((_, i) => a[i] ^ b[i]))
}

module.exports = {
  startSession,
  continueSession,
  finalizeSession,
  DEFAULT_MAX_SCRAM_ITERATIONS,
}


/***/ }),

/***/ 4150:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

const nodeCrypto = __nccwpck_require__(6982)

module.exports = {
  postgresMd5PasswordHash,
  randomBytes,
  deriveKey,
  sha256,
  hashByName,
  hmacSha256,
  md5,
}

/**
 * The Web Crypto API - grabbed from the Node.js library or the global
 * @type Crypto
 */
// eslint-disable-next-line no-undef
const webCrypto = nodeCrypto.webcrypto || globalThis.crypto
/**
 * The SubtleCrypto API for low level crypto operations.
 * @type SubtleCrypto
 */
const subtleCrypto = webCrypto.subtle
const textEncoder = new TextEncoder()

/**
 *
 * @param {*} length
 * @returns
 */
function randomBytes(length) {
  return webCrypto.getRandomValues(Buffer.alloc(length))
}

async function md5(string) {
  try {
    return nodeCrypto.createHash('md5').update(string, 'utf-8').digest('hex')
  } catch (e) {
    // `createHash()` failed so we are probably not in Node.js, use the WebCrypto API instead.
    // Note that the MD5 algorithm on WebCrypto is not available in Node.js.
    // This is why we cannot just use WebCrypto in all environments.
    const data = typeof string === 'string' ? textEncoder.encode(string) : string
    const hash = await subtleCrypto.digest('MD5', data)
    return Array.from(new Uint8Array(hash))
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('')
  }
}

// See AuthenticationMD5Password at https://www.postgresql.org/docs/current/static/protocol-flow.html
async function postgresMd5PasswordHash(user, password, salt) {
  const inner = await md5(password + user)
  const outer = await md5(Buffer.concat([Buffer.from(inner), salt]))
  return 'md5' + outer
}

/**
 * Create a SHA-256 digest of the given data
 * @param {Buffer} data
 */
async function sha256(text) {
  return await subtleCrypto.digest('SHA-256', text)
}

async function hashByName(hashName, text) {
  return await subtleCrypto.digest(hashName, text)
}

/**
 * Sign the message with the given key
 * @param {ArrayBuffer} keyBuffer
 * @param {string} msg
 */
async function hmacSha256(keyBuffer, msg) {
  const key = await subtleCrypto.importKey('raw', keyBuffer, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  return await subtleCrypto.sign('HMAC', key, textEncoder.encode(msg))
}

/**
 * Derive a key from the password and salt
 * @param {string} password
 * @param {Uint8Array} salt
 * @param {number} iterations
 */
async function deriveKey(password, salt, iterations) {
  const key = await subtleCrypto.importKey('raw', textEncoder.encode(password), 'PBKDF2', false, ['deriveBits'])
  const params = { name: 'PBKDF2', hash: 'SHA-256', salt: salt, iterations: iterations }
  return await subtleCrypto.deriveBits(params, key, 32 * 8, ['deriveBits'])
}


/***/ }),

/***/ 8995:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



let user
try {
  user = process.platform === 'win32' ? process.env.USERNAME : process.env.USER
} catch {
  // ignore, e.g., Deno without --allow-env
}

module.exports = {
  // database host. defaults to localhost
  host: 'localhost',

  // database user's name
  user,

  // name of database to connect
  database: undefined,

  // database user's password
  password: null,

  // a Postgres connection string to be used instead of setting individual connection items
  // NOTE:  Setting this value will cause it to override any other value (such as database or user) defined
  // in the defaults object.
  connectionString: undefined,

  // database port
  port: 5432,

  // number of rows to return at a time from a prepared statement's
  // portal. 0 will return all rows at once
  rows: 0,

  // binary result mode
  binary: false,

  // Connection pool options - see https://github.com/brianc/node-pg-pool

  // number of connections to use in connection pool
  // 0 will disable connection pooling
  max: 10,

  // max milliseconds a client can go unused before it is removed
  // from the pool and destroyed
  idleTimeoutMillis: 30000,

  client_encoding: '',

  ssl: false,

  // SSL negotiation style: 'postgres' (traditional SSLRequest) or 'direct'
  sslnegotiation: undefined,

  application_name: undefined,

  fallback_application_name: undefined,

  options: undefined,

  parseInputDatesAsUTC: false,

  // max milliseconds any query using this connection will execute for before timing out in error.
  // false=unlimited
  statement_timeout: false,

  // Abort any statement that waits longer than the specified duration in milliseconds while attempting to acquire a lock.
  // false=unlimited
  lock_timeout: false,

  // Terminate any session with an open transaction that has been idle for longer than the specified duration in milliseconds
  // false=unlimited
  idle_in_transaction_session_timeout: false,

  // max milliseconds to wait for query to complete (client side)
  query_timeout: false,

  connect_timeout: 0,

  keepalives: 1,

  keepalives_idle: 0,
}

const pgTypes = __nccwpck_require__(1549)
// save default parsers
const parseBigInteger = pgTypes.getTypeParser(20, 'text')
const parseBigIntegerArray = pgTypes.getTypeParser(1016, 'text')

// parse int8 so you can get your count values as actual numbers
module.exports.__defineSetter__('parseInt8', function (val) {
  pgTypes.setTypeParser(20, 'text', val ? pgTypes.getTypeParser(23, 'text') : parseBigInteger)
  pgTypes.setTypeParser(1016, 'text', val ? pgTypes.getTypeParser(1007, 'text') : parseBigIntegerArray)
})


/***/ }),

/***/ 3273:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Client = __nccwpck_require__(5042)
const defaults = __nccwpck_require__(8995)
const Connection = __nccwpck_require__(9809)
const Result = __nccwpck_require__(6424)
const utils = __nccwpck_require__(9652)
const Pool = __nccwpck_require__(7558)
const TypeOverrides = __nccwpck_require__(365)
const { DatabaseError } = __nccwpck_require__(4233)
const { escapeIdentifier, escapeLiteral } = __nccwpck_require__(9652)

const poolFactory = (Client) => {
  return class BoundPool extends Pool {
    constructor(options) {
      super(options, Client)
    }
  }
}

const PG = function (clientConstructor) {
  this.defaults = defaults
  this.Client = clientConstructor
  this.Query = this.Client.Query
  this.Pool = poolFactory(this.Client)
  this._pools = []
  this.Connection = Connection
  this.types = __nccwpck_require__(1549)
  this.DatabaseError = DatabaseError
  this.TypeOverrides = TypeOverrides
  this.escapeIdentifier = escapeIdentifier
  this.escapeLiteral = escapeLiteral
  this.Result = Result
  this.utils = utils
}

let clientConstructor = Client

let forceNative = false
try {
  forceNative = !!process.env.NODE_PG_FORCE_NATIVE
} catch {
  // ignore, e.g., Deno without --allow-env
}

if (forceNative) {
  clientConstructor = __nccwpck_require__(5301)
}

module.exports = new PG(clientConstructor)

// lazy require native module...the native module may not have installed
Object.defineProperty(module.exports, "native", ({
  configurable: true,
  enumerable: false,
  get() {
    let native = null
    try {
      native = new PG(__nccwpck_require__(5301))
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') {
        throw err
      }
    }

    // overwrite module.exports.native so that getter is never called again
    Object.defineProperty(module.exports, "native", ({
      value: native,
    }))

    return native
  },
}))


/***/ }),

/***/ 8942:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

const nodeUtils = __nccwpck_require__(9023)
// eslint-disable-next-line
var Native
// eslint-disable-next-line no-useless-catch
try {
  // Wrap this `require()` in a try-catch to avoid upstream bundlers from complaining that this might not be available since it is an optional import
  Native = __nccwpck_require__(4390)
} catch (e) {
  throw e
}
const TypeOverrides = __nccwpck_require__(365)
const EventEmitter = (__nccwpck_require__(4434).EventEmitter)
const util = __nccwpck_require__(9023)
const ConnectionParameters = __nccwpck_require__(646)

const NativeQuery = __nccwpck_require__(7581)

const queryQueueLengthDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Calling client.query() when the client is already executing a query is deprecated and will be removed in pg@9.0. Use async/await or an external async flow control mechanism instead.'
)

const Client = (module.exports = function (config) {
  EventEmitter.call(this)
  config = config || {}

  this._Promise = config.Promise || global.Promise
  this._types = new TypeOverrides(config.types)

  this.native = new Native({
    types: this._types,
  })

  this._queryQueue = []
  this._ending = false
  this._connecting = false
  this._connected = false
  this._queryable = true
  this.pipeline = Boolean(config.pipeline)
  this._pipelineInFlight = false

  // keep these on the object for legacy reasons
  // for the time being. TODO: deprecate all this jazz
  const cp = (this.connectionParameters = new ConnectionParameters(config))
  if (config.nativeConnectionString) cp.nativeConnectionString = config.nativeConnectionString
  this.user = cp.user

  // "hiding" the password so it doesn't show up in stack traces
  // or if the client is console.logged
  Object.defineProperty(this, 'password', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: cp.password,
  })
  this.database = cp.database
  this.host = cp.host
  this.port = cp.port

  // a hash to hold named queries
  this.namedQueries = {}
})

Client.Query = NativeQuery

util.inherits(Client, EventEmitter)

Client.prototype._errorAllQueries = function (err) {
  const enqueueError = (query) => {
    process.nextTick(() => {
      query.native = this.native
      query.handleError(err)
    })
  }

  if (this._hasActiveQuery()) {
    enqueueError(this._activeQuery)
    this._activeQuery = null
  }

  this._queryQueue.forEach(enqueueError)
  this._queryQueue.length = 0
}

// connect to the backend
// pass an optional callback to be called once connected
// or with an error if there was a connection error
Client.prototype._connect = function (cb) {
  const self = this

  if (this._connecting) {
    process.nextTick(() => cb(new Error('Client has already been connected. You cannot reuse a client.')))
    return
  }

  this._connecting = true

  this.connectionParameters.getLibpqConnectionString(function (err, conString) {
    if (self.connectionParameters.nativeConnectionString) conString = self.connectionParameters.nativeConnectionString
    if (err) return cb(err)
    self.native.connect(conString, function (err) {
      if (err) {
        self.native.end()
        return cb(err)
      }

      // set internal states to connected
      self._connected = true

      // handle connection errors from the native layer
      self.native.on('error', function (err) {
        self._queryable = false
        self._errorAllQueries(err)
        self.emit('error', err)
      })

      self.native.on('notification', function (msg) {
        self.emit('notification', {
          channel: msg.relname,
          payload: msg.extra,
        })
      })

      // signal we are connected now
      self.emit('connect')
      self._pulseQueryQueue(true)

      cb(null, this)
    })
  })
}

Client.prototype.connect = function (callback) {
  if (callback) {
    this._connect(callback)
    return
  }

  return new this._Promise((resolve, reject) => {
    this._connect((error) => {
      if (error) {
        reject(error)
      } else {
        resolve(this)
      }
    })
  })
}

// send a query to the server
// this method is highly overloaded to take
// 1) string query, optional array of parameters, optional function callback
// 2) object query with {
//    string query
//    optional array values,
//    optional function callback instead of as a separate parameter
//    optional string name to name & cache the query plan
//    optional string rowMode = 'array' for an array of results
//  }
Client.prototype.query = function (config, values, callback) {
  let query
  let result
  let readTimeout
  let readTimeoutTimer
  let queryCallback

  if (config === null || config === undefined) {
    throw new TypeError('Client was passed a null or undefined query')
  } else if (typeof config.submit === 'function') {
    readTimeout = config.query_timeout || this.connectionParameters.query_timeout
    result = query = config
    // accept query(new Query(...), (err, res) => { }) style
    if (typeof values === 'function') {
      config.callback = values
    }
  } else {
    readTimeout = config.query_timeout || this.connectionParameters.query_timeout
    query = new NativeQuery(config, values, callback)
    if (!query.callback) {
      let resolveOut, rejectOut
      result = new this._Promise((resolve, reject) => {
        resolveOut = resolve
        rejectOut = reject
      }).catch((err) => {
        Error.captureStackTrace(err)
        throw err
      })
      query.callback = (err, res) => (err ? rejectOut(err) : resolveOut(res))
    }
  }

  if (readTimeout) {
    queryCallback = query.callback || (() => {})

    readTimeoutTimer = setTimeout(() => {
      const error = new Error('Query read timeout')

      process.nextTick(() => {
        query.handleError(error, this.connection)
      })

      queryCallback(error)

      // we already returned an error,
      // just do nothing if query completes
      query.callback = () => {}

      // Remove from queue
      const index = this._queryQueue.indexOf(query)
      if (index > -1) {
        this._queryQueue.splice(index, 1)
      }

      this._pulseQueryQueue()
    }, readTimeout)

    query.callback = (err, res) => {
      clearTimeout(readTimeoutTimer)
      queryCallback(err, res)
    }
  }

  if (!this._queryable) {
    query.native = this.native
    process.nextTick(() => {
      query.handleError(new Error('Client has encountered a connection error and is not queryable'))
    })
    return result
  }

  if (this._ending) {
    query.native = this.native
    process.nextTick(() => {
      query.handleError(new Error('Client was closed and is not queryable'))
    })
    return result
  }

  if (this._queryQueue.length > 0 && !this.pipeline) {
    queryQueueLengthDeprecationNotice()
  }

  this._queryQueue.push(query)
  this._pulseQueryQueue()
  return result
}

// disconnect from the backend server
Client.prototype.end = function (cb) {
  const self = this

  this._ending = true

  if (this._connecting && !this._connected) {
    this.once('connect', () => {
      this.end(() => {})
    })
  }
  let result
  if (!cb) {
    result = new this._Promise(function (resolve, reject) {
      cb = (err) => (err ? reject(err) : resolve())
    })
  }

  const doEnd = function () {
    self.native.end(function () {
      self._connected = false

      self._errorAllQueries(new Error('Connection terminated'))

      process.nextTick(() => {
        self.emit('end')
        if (cb) cb()
      })
    })
  }

  // If pipeline has in-flight or queued queries, wait for them to drain before closing
  if (this.pipeline && (this._pipelineInFlight || this._queryQueue.length > 0)) {
    this.once('drain', doEnd)
  } else {
    doEnd()
  }
  return result
}

Client.prototype._hasActiveQuery = function () {
  return this._activeQuery && this._activeQuery.state !== 'error' && this._activeQuery.state !== 'end'
}

Client.prototype._pulseQueryQueue = function (initialConnection) {
  if (!this._connected) {
    return
  }
  if (this.pipeline && !initialConnection) {
    return this._pulsePipelinedQueryQueue()
  }
  if (this._hasActiveQuery()) {
    return
  }
  const query = this._queryQueue.shift()
  if (!query) {
    if (!initialConnection) {
      this.emit('drain')
    }
    return
  }
  this._activeQuery = query
  query.submit(this)
  const self = this
  query.once('_done', function () {
    self._pulseQueryQueue()
  })
}

Client.prototype._pulsePipelinedQueryQueue = function () {
  if (!this._connected || this._pipelineInFlight) {
    return
  }
  if (this._queryQueue.length === 0) {
    if (this.hasExecuted) {
      this.emit('drain')
    }
    return
  }

  this._pipelineInFlight = true
  const self = this
  const queries = []
  const nativeQueries = []
  const utils = __nccwpck_require__(9652)

  while (this._queryQueue.length > 0) {
    const query = this._queryQueue.shift()
    this.hasExecuted = true
    nativeQueries.push(query)

    const values = query.values ? query.values.map(utils.prepareValue) : null
    const pipelineEntry = { text: query.text, name: query.name, arrayMode: query._arrayMode }
    if (values) {
      pipelineEntry.values = values
    }
    if (query.name && this.namedQueries[query.name]) {
      pipelineEntry._alreadyPrepared = true
    }
    queries.push(pipelineEntry)
  }

  this.native.pipeline(queries, function (err, results) {
    self._pipelineInFlight = false

    if (err) {
      // Total pipeline failure. Per-query errors arrive on results[i].err, so reaching here means
      // the connection itself is gone: mark it unusable and say so, the way the JS client and the
      // non-pipelined native path both do. Without this the client looks healthy after losing its
      // backend, a Pool never discards it, and everything routed to it fails one query at a time
      // for the life of the process.
      self._connected = false
      self._queryable = false
      for (let i = 0; i < nativeQueries.length; i++) {
        const q = nativeQueries[i]
        q.native = self.native
        q.handleError(err)
      }
      self._errorAllQueries(err)
      self.emit('error', err)
      self.emit('end')
      return
    }

    // Deliver results to each query
    for (let i = 0; i < nativeQueries.length; i++) {
      const q = nativeQueries[i]
      const r = results[i]
      q.native = self.native

      if (r.err) {
        q.handleError(r.err)
      } else {
        // Track named queries on success
        if (q.name) {
          self.namedQueries[q.name] = q.text
        }
        q.state = 'end'
        q.emit('end', r.result)
        if (q.callback) {
          q.callback(null, r.result)
        }
      }

      setImmediate(function () {
        q.emit('_done')
      })
    }

    // Process any queries that arrived while we were reading
    self._pulsePipelinedQueryQueue()
  })
}

// attempt to cancel an in-progress query
Client.prototype.cancel = function (query) {
  if (this._activeQuery === query) {
    this.native.cancel(function () {})
  } else if (this._queryQueue.indexOf(query) !== -1) {
    this._queryQueue.splice(this._queryQueue.indexOf(query), 1)
  }
}

Client.prototype.ref = function () {}
Client.prototype.unref = function () {}

Client.prototype.setTypeParser = function (oid, format, parseFn) {
  return this._types.setTypeParser(oid, format, parseFn)
}

Client.prototype.getTypeParser = function (oid, format) {
  return this._types.getTypeParser(oid, format)
}

Client.prototype.isConnected = function () {
  return this._connected
}

Client.prototype.getTransactionStatus = function () {
  return this.native.getTransactionStatus()
}


/***/ }),

/***/ 5301:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


module.exports = __nccwpck_require__(8942)


/***/ }),

/***/ 7581:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const EventEmitter = (__nccwpck_require__(4434).EventEmitter)
const util = __nccwpck_require__(9023)
const utils = __nccwpck_require__(9652)

const NativeQuery = (module.exports = function (config, values, callback) {
  EventEmitter.call(this)
  config = utils.normalizeQueryConfig(config, values, callback)
  this.text = config.text
  this.values = config.values
  this.name = config.name
  this.queryMode = config.queryMode
  this.callback = config.callback
  this.state = 'new'
  this._arrayMode = config.rowMode === 'array'

  // if the 'row' event is listened for
  // then emit them as they come in
  // without setting singleRowMode to true
  // this has almost no meaning because libpq
  // reads all rows into memory before returning any
  this._emitRowEvents = false
  this.on(
    'newListener',
    function (event) {
      if (event === 'row') this._emitRowEvents = true
    }.bind(this)
  )
})

util.inherits(NativeQuery, EventEmitter)

const errorFieldMap = {
  sqlState: 'code',
  statementPosition: 'position',
  messagePrimary: 'message',
  messageDetail: 'detail',
  messageHint: 'hint',
  context: 'where',
  schemaName: 'schema',
  tableName: 'table',
  columnName: 'column',
  dataTypeName: 'dataType',
  constraintName: 'constraint',
  sourceFile: 'file',
  sourceLine: 'line',
  sourceFunction: 'routine',
}

NativeQuery.prototype.handleError = function (err) {
  // copy pq error fields into the error object
  const fields = this.native && this.native.pq.resultErrorFields()
  if (fields) {
    for (const key in fields) {
      const normalizedFieldName = errorFieldMap[key] || key
      err[normalizedFieldName] = fields[key]
    }
  }
  if (this.callback) {
    this.callback(err)
  } else {
    this.emit('error', err)
  }
  this.state = 'error'
}

NativeQuery.prototype.then = function (onSuccess, onFailure) {
  return this._getPromise().then(onSuccess, onFailure)
}

NativeQuery.prototype.catch = function (callback) {
  return this._getPromise().catch(callback)
}

NativeQuery.prototype._getPromise = function () {
  if (this._promise) return this._promise
  this._promise = new Promise(
    function (resolve, reject) {
      this._once('end', resolve)
      this._once('error', reject)
    }.bind(this)
  )
  return this._promise
}

NativeQuery.prototype.submit = function (client) {
  this.state = 'running'
  const self = this
  this.native = client.native
  client.native.arrayMode = this._arrayMode

  let after = function (err, rows, results) {
    client.native.arrayMode = false
    setImmediate(function () {
      self.emit('_done')
    })

    // handle possible query error
    if (err) {
      return self.handleError(err)
    }

    // emit row events for each row in the result
    if (self._emitRowEvents) {
      if (results.length > 1) {
        rows.forEach((rowOfRows, i) => {
          rowOfRows.forEach((row) => {
            self.emit('row', row, results[i])
          })
        })
      } else {
        rows.forEach(function (row) {
          self.emit('row', row, results)
        })
      }
    }

    // handle successful result
    self.state = 'end'
    self.emit('end', results)
    if (self.callback) {
      self.callback(null, results)
    }
  }

  if (process.domain) {
    after = process.domain.bind(after)
  }

  // named query
  if (this.name) {
    if (this.name.length > 63) {
      console.error('Warning! Postgres only supports 63 characters for query names.')
      console.error('You supplied %s (%s)', this.name, this.name.length)
      console.error('This can cause conflicts and silent errors executing queries')
    }
    const values = (this.values || []).map(utils.prepareValue)

    // check if the client has already executed this named query
    // if so...just execute it again - skip the planning phase
    if (client.namedQueries[this.name] !== undefined) {
      if (this.text && client.namedQueries[this.name] !== this.text) {
        const err = new Error(`Prepared statements must be unique - '${this.name}' was used for a different statement`)
        return after(err)
      }
      return client.native.execute(this.name, values, after)
    }
    // plan the named query the first time, then execute it
    return client.native.prepare(this.name, this.text, values.length, function (err) {
      if (err) return after(err)
      client.namedQueries[self.name] = self.text
      return self.native.execute(self.name, values, after)
    })
  } else if (this.values) {
    if (!Array.isArray(this.values)) {
      const err = new Error('Query values must be an array')
      return after(err)
    }
    const vals = this.values.map(utils.prepareValue)
    client.native.query(this.text, vals, after)
  } else if (this.queryMode === 'extended') {
    client.native.query(this.text, [], after)
  } else {
    client.native.query(this.text, after)
  }
}


/***/ }),

/***/ 4473:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const { EventEmitter } = __nccwpck_require__(4434)

const Result = __nccwpck_require__(6424)
const utils = __nccwpck_require__(9652)

class Query extends EventEmitter {
  constructor(config, values, callback) {
    super()

    config = utils.normalizeQueryConfig(config, values, callback)

    this.text = config.text
    this.values = config.values
    this.rows = config.rows
    this.types = config.types
    this.name = config.name
    this.queryMode = config.queryMode
    this.binary = config.binary
    // use unique portal name each time
    this.portal = config.portal || ''
    this.callback = config.callback
    this._rowMode = config.rowMode
    if (process.domain && config.callback) {
      this.callback = process.domain.bind(config.callback)
    }
    this._result = new Result(this._rowMode, this.types)

    // potential for multiple results
    this._results = this._result
    this._canceledDueToError = false
  }

  requiresPreparation() {
    if (this.queryMode === 'extended') {
      return true
    }

    // named queries must always be prepared
    if (this.name) {
      return true
    }
    // always prepare if there are max number of rows expected per
    // portal execution
    if (this.rows) {
      return true
    }
    // don't prepare empty text queries
    if (!this.text) {
      return false
    }
    // prepare if there are values
    if (!this.values) {
      return false
    }
    return this.values.length > 0
  }

  _checkForMultirow() {
    // if we already have a result with a command property
    // then we've already executed one query in a multi-statement simple query
    // turn our results into an array of results
    if (this._result.command) {
      if (!Array.isArray(this._results)) {
        this._results = [this._result]
      }
      this._result = new Result(this._rowMode, this._result._types)
      this._results.push(this._result)
    }
  }

  // associates row metadata from the supplied
  // message with this query object
  // metadata used when parsing row results
  handleRowDescription(msg) {
    this._checkForMultirow()
    this._result.addFields(msg.fields)
    this._accumulateRows = this.callback || !this.listeners('row').length
  }

  handleDataRow(msg) {
    let row

    if (this._canceledDueToError) {
      return
    }

    try {
      row = this._result.parseRow(msg.fields)
    } catch (err) {
      this._canceledDueToError = err
      return
    }

    this.emit('row', row, this._result)
    if (this._accumulateRows) {
      this._result.addRow(row)
    }
  }

  handleCommandComplete(msg, connection) {
    this._checkForMultirow()
    this._result.addCommandComplete(msg)
    // need to sync after each command complete of a prepared statement
    // if we were using a row count which results in multiple calls to _getRows
    if (this.rows) {
      connection.sync()
    }
  }

  // if a named prepared statement is created with empty query text
  // the backend will send an emptyQuery message but *not* a command complete message
  // since we pipeline sync immediately after execute we don't need to do anything here
  // unless we have rows specified, in which case we did not pipeline the initial sync call
  handleEmptyQuery(connection) {
    if (this.rows) {
      connection.sync()
    }
  }

  handleError(err, connection) {
    // need to sync after error during a prepared statement
    if (this._canceledDueToError) {
      err = this._canceledDueToError
      this._canceledDueToError = false
    }
    // if callback supplied do not emit error event as uncaught error
    // events will bubble up to node process
    if (this.callback) {
      return this.callback(err)
    }
    this.emit('error', err)
  }

  handleReadyForQuery(con) {
    if (this._canceledDueToError) {
      return this.handleError(this._canceledDueToError, con)
    }
    if (this.callback) {
      try {
        this.callback(null, this._results)
      } catch (err) {
        process.nextTick(() => {
          throw err
        })
      }
    }
    this.emit('end', this._results)
  }

  submit(connection) {
    if (typeof this.text !== 'string' && typeof this.name !== 'string') {
      return new Error('A query must have either text or a name. Supplying neither is unsupported.')
    }
    const previous = connection.parsedStatements[this.name] || connection.submittedNamedStatements[this.name]
    if (this.text && previous && this.text !== previous) {
      return new Error(`Prepared statements must be unique - '${this.name}' was used for a different statement`)
    }
    if (this.values && !Array.isArray(this.values)) {
      return new Error('Query values must be an array')
    }
    if (this.requiresPreparation()) {
      // If we're using the extended query protocol we fire off several separate commands
      // to the backend. On some versions of node & some operating system versions
      // the network stack writes each message separately instead of buffering them together
      // causing the client & network to send more slowly. Corking & uncorking the stream
      // allows node to buffer up the messages internally before sending them all off at once.
      // note: we're checking for existence of cork/uncork because some versions of streams
      // might not have this (cloudflare?)
      connection.stream.cork && connection.stream.cork()
      try {
        this.prepare(connection)
      } finally {
        // while unlikely for this.prepare to throw, if it does & we don't uncork this stream
        // this client becomes unresponsive, so put in finally block "just in case"
        connection.stream.uncork && connection.stream.uncork()
      }
    } else {
      connection.query(this.text)
    }
    return null
  }

  hasBeenParsed(connection) {
    return (
      this.name &&
      (connection.parsedStatements[this.name] !== undefined ||
        connection.submittedNamedStatements[this.name] !== undefined)
    )
  }

  handlePortalSuspended(connection) {
    this._getRows(connection, this.rows)
  }

  _getRows(connection, rows) {
    connection.execute({
      portal: this.portal,
      rows: rows,
    })
    // if we're not reading pages of rows send the sync command
    // to indicate the pipeline is finished
    if (!rows) {
      connection.sync()
    } else {
      // otherwise flush the call out to read more rows
      connection.flush()
    }
  }

  // http://developer.postgresql.org/pgdocs/postgres/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
  prepare(connection) {
    // TODO refactor this poor encapsulation
    if (!this.hasBeenParsed(connection)) {
      connection.parse({
        text: this.text,
        name: this.name,
        types: this.types,
      })
      if (this.name) {
        connection.submittedNamedStatements[this.name] = this.text
      }
    }

    // because we're mapping user supplied values to
    // postgres wire protocol compatible values it could
    // throw an exception, so try/catch this section
    try {
      connection.bind({
        portal: this.portal,
        statement: this.name,
        values: this.values,
        binary: this.binary,
        valueMapper: utils.prepareValue,
      })
    } catch (err) {
      // we should close parse to avoid leaking connections
      connection.close({ type: 'S', name: this.name })
      connection.sync()

      this.handleError(err, connection)
      return
    }

    connection.describe({
      type: 'P',
      name: this.portal || '',
    })

    this._getRows(connection, this.rows)
  }

  handleCopyInResponse(connection) {
    connection.sendCopyFail('No source stream defined')
  }

  handleCopyData(msg, connection) {
    // noop
  }
}

module.exports = Query


/***/ }),

/***/ 6424:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const types = __nccwpck_require__(1549)

const matchRegexp = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/

// result object returned from query
// in the 'end' event and also
// passed as second argument to provided callback
class Result {
  constructor(rowMode, types) {
    this.command = null
    this.rowCount = null
    this.oid = null
    this.rows = []
    this.fields = []
    this._parsers = undefined
    this._types = types
    this.RowCtor = null
    this.rowAsArray = rowMode === 'array'
    if (this.rowAsArray) {
      this.parseRow = this._parseRowAsArray
    }
    this._prebuiltEmptyResultObject = null
  }

  // adds a command complete message
  addCommandComplete(msg) {
    let match
    if (msg.text) {
      // pure javascript
      match = matchRegexp.exec(msg.text)
    } else {
      // native bindings
      match = matchRegexp.exec(msg.command)
    }
    if (match) {
      this.command = match[1]
      if (match[3]) {
        // COMMAND OID ROWS
        this.oid = parseInt(match[2], 10)
        this.rowCount = parseInt(match[3], 10)
      } else if (match[2]) {
        // COMMAND ROWS
        this.rowCount = parseInt(match[2], 10)
      }
    }
  }

  _parseRowAsArray(rowData) {
    const row = new Array(rowData.length)
    for (let i = 0, len = rowData.length; i < len; i++) {
      const rawValue = rowData[i]
      if (rawValue !== null) {
        row[i] = this._parsers[i](rawValue)
      } else {
        row[i] = null
      }
    }
    return row
  }

  parseRow(rowData) {
    const row = { ...this._prebuiltEmptyResultObject }
    for (let i = 0, len = rowData.length; i < len; i++) {
      const rawValue = rowData[i]
      const field = this.fields[i].name
      if (rawValue !== null) {
        const v = this.fields[i].format === 'binary' ? Buffer.from(rawValue) : rawValue
        row[field] = this._parsers[i](v)
      } else {
        row[field] = null
      }
    }
    return row
  }

  addRow(row) {
    this.rows.push(row)
  }

  addFields(fieldDescriptions) {
    // clears field definitions
    // multiple query statements in 1 action can result in multiple sets
    // of rowDescriptions...eg: 'select NOW(); select 1::int;'
    // you need to reset the fields
    this.fields = fieldDescriptions
    if (this.fields.length) {
      this._parsers = new Array(fieldDescriptions.length)
    }

    const row = Object.create(null)

    for (let i = 0; i < fieldDescriptions.length; i++) {
      const desc = fieldDescriptions[i]
      row[desc.name] = null

      if (this._types) {
        this._parsers[i] = this._types.getTypeParser(desc.dataTypeID, desc.format || 'text')
      } else {
        this._parsers[i] = types.getTypeParser(desc.dataTypeID, desc.format || 'text')
      }
    }

    this._prebuiltEmptyResultObject = { ...row }
  }
}

module.exports = Result


/***/ }),

/***/ 829:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

const { getStream, getSecureStream } = getStreamFuncs()

module.exports = {
  /**
   * Get a socket stream compatible with the current runtime environment.
   * @returns {Duplex}
   */
  getStream,
  /**
   * Get a TLS secured socket, compatible with the current environment,
   * using the socket and other settings given in `options`.
   * @returns {Duplex}
   */
  getSecureStream,
}

/**
 * The stream functions that work in Node.js
 */
function getNodejsStreamFuncs() {
  function getStream(ssl) {
    const net = __nccwpck_require__(9278)
    return new net.Socket()
  }

  function getSecureStream(options) {
    const tls = __nccwpck_require__(4756)
    return tls.connect(options)
  }
  return {
    getStream,
    getSecureStream,
  }
}

/**
 * The stream functions that work in Cloudflare Workers
 */
function getCloudflareStreamFuncs() {
  function getStream(ssl) {
    const { CloudflareSocket } = __nccwpck_require__(785)
    return new CloudflareSocket(ssl)
  }

  function getSecureStream(options) {
    options.socket.startTls(options)
    return options.socket
  }
  return {
    getStream,
    getSecureStream,
  }
}

/**
 * Are we running in a Cloudflare Worker?
 *
 * @returns true if the code is currently running inside a Cloudflare Worker.
 */
function isCloudflareRuntime() {
  // Since 2022-03-21 the `global_navigator` compatibility flag is on for Cloudflare Workers
  // which means that `navigator.userAgent` will be defined.
  // eslint-disable-next-line no-undef
  if (typeof navigator === 'object' && navigator !== null && typeof navigator.userAgent === 'string') {
    // eslint-disable-next-line no-undef
    return navigator.userAgent === 'Cloudflare-Workers'
  }
  // In case `navigator` or `navigator.userAgent` is not defined then try a more sneaky approach
  if (typeof Response === 'function') {
    const resp = new Response(null, { cf: { thing: true } })
    if (typeof resp.cf === 'object' && resp.cf !== null && resp.cf.thing) {
      return true
    }
  }
  return false
}

function getStreamFuncs() {
  if (isCloudflareRuntime()) {
    return getCloudflareStreamFuncs()
  }
  return getNodejsStreamFuncs()
}


/***/ }),

/***/ 365:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const types = __nccwpck_require__(1549)

function TypeOverrides(userTypes) {
  this._types = userTypes || types
  this.text = {}
  this.binary = {}
}

TypeOverrides.prototype.getOverrides = function (format) {
  switch (format) {
    case 'text':
      return this.text
    case 'binary':
      return this.binary
    default:
      return {}
  }
}

TypeOverrides.prototype.setTypeParser = function (oid, format, parseFn) {
  if (typeof format === 'function') {
    parseFn = format
    format = 'text'
  }
  this.getOverrides(format)[oid] = parseFn
}

TypeOverrides.prototype.getTypeParser = function (oid, format) {
  format = format || 'text'
  return this.getOverrides(format)[oid] || this._types.getTypeParser(oid, format)
}

module.exports = TypeOverrides


/***/ }),

/***/ 9652:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const defaults = __nccwpck_require__(8995)
const nodeUtils = __nccwpck_require__(9023)

const { isDate } = __nccwpck_require__(8253)

const invalidDateDeprecationNotice = nodeUtils.deprecate(
  () => {},
  'Sending an invalid date to Postgres is deprecated and will throw an error in the next major version of pg. Ensure any Date object passed as a query parameter is valid.',
  'PG_INVALID_DATE'
)

function escapeElement(elementRepresentation) {
  const escaped = elementRepresentation.replace(/\\/g, '\\\\').replace(/"/g, '\\"')

  return '"' + escaped + '"'
}

// convert a JS array to a postgres array literal
// uses comma separator so won't work for types like box that use
// a different array separator.
function arrayString(val) {
  let result = '{'
  for (let i = 0; i < val.length; i++) {
    if (i > 0) {
      result += ','
    }
    let item = val[i]
    if (item == null) {
      result += 'NULL'
    } else if (Array.isArray(item)) {
      result += arrayString(item)
    } else if (ArrayBuffer.isView(item)) {
      if (!(item instanceof Buffer)) {
        item = Buffer.from(item.buffer, item.byteOffset, item.byteLength)
      }
      result += '\\\\x' + item.toString('hex')
    } else {
      result += escapeElement(prepareValue(item))
    }
  }
  result += '}'
  return result
}

// converts values from javascript types
// to their 'raw' counterparts for use as a postgres parameter
// note: you can override this function to provide your own conversion mechanism
// for complex types, etc...
const prepareValue = function (val, seen) {
  // null and undefined are both null for postgres
  if (val == null) {
    return null
  }
  if (typeof val === 'object') {
    if (val instanceof Buffer) {
      return val
    }
    if (ArrayBuffer.isView(val)) {
      return Buffer.from(val.buffer, val.byteOffset, val.byteLength)
    }
    if (isDate(val)) {
      if (isNaN(val.getTime())) {
        invalidDateDeprecationNotice()
      }
      if (defaults.parseInputDatesAsUTC) {
        return dateToStringUTC(val)
      } else {
        return dateToString(val)
      }
    }
    if (Array.isArray(val)) {
      return arrayString(val)
    }

    return prepareObject(val, seen)
  }
  return val.toString()
}

function prepareObject(val, seen) {
  if (val && typeof val.toPostgres === 'function') {
    seen = seen || []
    if (seen.indexOf(val) !== -1) {
      throw new Error('circular reference detected while preparing "' + val + '" for query')
    }
    seen.push(val)

    return prepareValue(val.toPostgres(prepareValue), seen)
  }
  return JSON.stringify(val)
}

function dateToString(date) {
  let offset = -date.getTimezoneOffset()

  let year = date.getFullYear()
  const isBCYear = year < 1
  if (isBCYear) year = Math.abs(year) + 1 // negative years are 1 off their BC representation

  let ret =
    String(year).padStart(4, '0') +
    '-' +
    String(date.getMonth() + 1).padStart(2, '0') +
    '-' +
    String(date.getDate()).padStart(2, '0') +
    'T' +
    String(date.getHours()).padStart(2, '0') +
    ':' +
    String(date.getMinutes()).padStart(2, '0') +
    ':' +
    String(date.getSeconds()).padStart(2, '0') +
    '.' +
    String(date.getMilliseconds()).padStart(3, '0')

  if (offset < 0) {
    ret += '-'
    offset *= -1
  } else {
    ret += '+'
  }

  ret += String(Math.floor(offset / 60)).padStart(2, '0') + ':' + String(offset % 60).padStart(2, '0')
  if (isBCYear) ret += ' BC'
  return ret
}

function dateToStringUTC(date) {
  let year = date.getUTCFullYear()
  const isBCYear = year < 1
  if (isBCYear) year = Math.abs(year) + 1 // negative years are 1 off their BC representation

  let ret =
    String(year).padStart(4, '0') +
    '-' +
    String(date.getUTCMonth() + 1).padStart(2, '0') +
    '-' +
    String(date.getUTCDate()).padStart(2, '0') +
    'T' +
    String(date.getUTCHours()).padStart(2, '0') +
    ':' +
    String(date.getUTCMinutes()).padStart(2, '0') +
    ':' +
    String(date.getUTCSeconds()).padStart(2, '0') +
    '.' +
    String(date.getUTCMilliseconds()).padStart(3, '0')

  ret += '+00:00'
  if (isBCYear) ret += ' BC'
  return ret
}

function normalizeQueryConfig(config, values, callback) {
  // can take in strings or config objects
  // Copy config so normalization does not mutate the caller's object.
  config = typeof config === 'string' ? { text: config } : cloneQueryConfig(config)
  if (values) {
    if (typeof values === 'function') {
      config.callback = values
    } else {
      config.values = values
    }
  }
  if (callback) {
    config.callback = callback
  }
  return config
}

function cloneQueryConfig(config) {
  if (config == null) {
    return config
  }
  return Object.defineProperties(Object.create(Object.getPrototypeOf(config)), Object.getOwnPropertyDescriptors(config))
}

// Ported from PostgreSQL 9.2.4 source code in src/interfaces/libpq/fe-exec.c
const escapeIdentifier = function (str) {
  return '"' + str.replace(/"/g, '""') + '"'
}

const escapeLiteral = function (str) {
  let hasBackslash = false
  let escaped = "'"

  if (str == null) {
    return "''"
  }

  if (typeof str !== 'string') {
    return "''"
  }

  for (let i = 0; i < str.length; i++) {
    const c = str[i]
    if (c === "'") {
      escaped += c + c
    } else if (c === '\\') {
      escaped += c + c
      hasBackslash = true
    } else {
      escaped += c
    }
  }

  escaped += "'"

  if (hasBackslash === true) {
    escaped = ' E' + escaped
  }

  return escaped
}

module.exports = {
  prepareValue: function prepareValueWrapper(value) {
    // this ensures that extra arguments do not get passed into prepareValue
    // by accident, eg: from calling values.map(utils.prepareValue)
    return prepareValue(value)
  },
  normalizeQueryConfig,
  escapeIdentifier,
  escapeLiteral,
}


/***/ }),

/***/ 8702:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



var path = __nccwpck_require__(6928)
  , Stream = (__nccwpck_require__(2203).Stream)
  , split = __nccwpck_require__(5286)
  , util = __nccwpck_require__(9023)
  , defaultPort = 5432
  , isWin = (process.platform === 'win32')
  , warnStream = process.stderr
;


var S_IRWXG = 56     //    00070(8)
  , S_IRWXO = 7      //    00007(8)
  , S_IFMT  = 61440  // 00170000(8)
  , S_IFREG = 32768  //  0100000(8)
;
function isRegFile(mode) {
    return ((mode & S_IFMT) == S_IFREG);
}

var fieldNames = [ 'host', 'port', 'database', 'user', 'password' ];
var nrOfFields = fieldNames.length;
var passKey = fieldNames[ nrOfFields -1 ];


function warn() {
    var isWritable = (
        warnStream instanceof Stream &&
          true === warnStream.writable
    );

    if (isWritable) {
        var args = Array.prototype.slice.call(arguments).concat("\n");
        warnStream.write( util.format.apply(util, args) );
    }
}


Object.defineProperty(module.exports, "isWin", ({
    get : function() {
        return isWin;
    } ,
    set : function(val) {
        isWin = val;
    }
}));


module.exports.warnTo = function(stream) {
    var old = warnStream;
    warnStream = stream;
    return old;
};

module.exports.getFileName = function(rawEnv){
    var env = rawEnv || process.env;
    var file = env.PGPASSFILE || (
        isWin ?
          path.join( env.APPDATA || './' , 'postgresql', 'pgpass.conf' ) :
          path.join( env.HOME || './', '.pgpass' )
    );
    return file;
};

module.exports.usePgPass = function(stats, fname) {
    if (Object.prototype.hasOwnProperty.call(process.env, 'PGPASSWORD')) {
        return false;
    }

    if (isWin) {
        return true;
    }

    fname = fname || '<unkn>';

    if (! isRegFile(stats.mode)) {
        warn('WARNING: password file "%s" is not a plain file', fname);
        return false;
    }

    if (stats.mode & (S_IRWXG | S_IRWXO)) {
        /* If password file is insecure, alert the user and ignore it. */
        warn('WARNING: password file "%s" has group or world access; permissions should be u=rw (0600) or less', fname);
        return false;
    }

    return true;
};


var matcher = module.exports.match = function(connInfo, entry) {
    return fieldNames.slice(0, -1).reduce(function(prev, field, idx){
        if (idx == 1) {
            // the port
            if ( Number( connInfo[field] || defaultPort ) === Number( entry[field] ) ) {
                return prev && true;
            }
        }
        return prev && (
            entry[field] === '*' ||
              entry[field] === connInfo[field]
        );
    }, true);
};


module.exports.getPassword = function(connInfo, stream, cb) {
    var pass;
    var lineStream = stream.pipe(split());

    function onLine(line) {
        var entry = parseLine(line);
        if (entry && isValidEntry(entry) && matcher(connInfo, entry)) {
            pass = entry[passKey];
            lineStream.end(); // -> calls onEnd(), but pass is set now
        }
    }

    var onEnd = function() {
        stream.destroy();
        cb(pass);
    };

    var onErr = function(err) {
        stream.destroy();
        warn('WARNING: error on reading file: %s', err);
        cb(undefined);
    };

    stream.on('error', onErr);
    lineStream
        .on('data', onLine)
        .on('end', onEnd)
        .on('error', onErr)
    ;

};


var parseLine = module.exports.parseLine = function(line) {
    if (line.length < 11 || line.match(/^\s+#/)) {
        return null;
    }

    var curChar = '';
    var prevChar = '';
    var fieldIdx = 0;
    var startIdx = 0;
    var endIdx = 0;
    var obj = {};
    var isLastField = false;
    var addToObj = function(idx, i0, i1) {
        var field = line.substring(i0, i1);

        if (! Object.hasOwnProperty.call(process.env, 'PGPASS_NO_DEESCAPE')) {
            field = field.replace(/\\([:\\])/g, '$1');
        }

        obj[ fieldNames[idx] ] = field;
    };

    for (var i = 0 ; i < line.length-1 ; i += 1) {
        curChar = line.charAt(i+1);
        prevChar = line.charAt(i);

        isLastField = (fieldIdx == nrOfFields-1);

        if (isLastField) {
            addToObj(fieldIdx, startIdx);
            break;
        }

        if (i >= 0 && curChar == ':' && prevChar !== '\\') {
            addToObj(fieldIdx, startIdx, i+1);

            startIdx = i+2;
            fieldIdx += 1;
        }
    }

    obj = ( Object.keys(obj).length === nrOfFields ) ? obj : null;

    return obj;
};


var isValidEntry = module.exports.isValidEntry = function(entry){
    var rules = {
        // host
        0 : function(x){
            return x.length > 0;
        } ,
        // port
        1 : function(x){
            if (x === '*') {
                return true;
            }
            x = Number(x);
            return (
                isFinite(x) &&
                  x > 0 &&
                  x < 9007199254740992 &&
                  Math.floor(x) === x
            );
        } ,
        // database
        2 : function(x){
            return x.length > 0;
        } ,
        // username
        3 : function(x){
            return x.length > 0;
        } ,
        // password
        4 : function(x){
            return x.length > 0;
        }
    };

    for (var idx = 0 ; idx < fieldNames.length ; idx += 1) {
        var rule = rules[idx];
        var value = entry[ fieldNames[idx] ] || '';

        var res = rule(value);
        if (!res) {
            return false;
        }
    }

    return true;
};



/***/ }),

/***/ 3272:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



var path = __nccwpck_require__(6928)
  , fs = __nccwpck_require__(9896)
  , helper = __nccwpck_require__(8702)
;


module.exports = function(connInfo, cb) {
    var file = helper.getFileName();
    
    fs.stat(file, function(err, stat){
        if (err || !helper.usePgPass(stat, file)) {
            return cb(undefined);
        }

        var st = fs.createReadStream(file);

        helper.getPassword(connInfo, st, cb);
    });
};

module.exports.warnTo = helper.warnTo;


/***/ }),

/***/ 3879:
/***/ ((__unused_webpack_module, exports) => {



exports.parse = function (source, transform) {
  return new ArrayParser(source, transform).parse()
}

class ArrayParser {
  constructor (source, transform) {
    this.source = source
    this.transform = transform || identity
    this.position = 0
    this.entries = []
    this.recorded = []
    this.dimension = 0
  }

  isEof () {
    return this.position >= this.source.length
  }

  nextCharacter () {
    var character = this.source[this.position++]
    if (character === '\\') {
      return {
        value: this.source[this.position++],
        escaped: true
      }
    }
    return {
      value: character,
      escaped: false
    }
  }

  record (character) {
    this.recorded.push(character)
  }

  newEntry (includeEmpty) {
    var entry
    if (this.recorded.length > 0 || includeEmpty) {
      entry = this.recorded.join('')
      if (entry === 'NULL' && !includeEmpty) {
        entry = null
      }
      if (entry !== null) entry = this.transform(entry)
      this.entries.push(entry)
      this.recorded = []
    }
  }

  consumeDimensions () {
    if (this.source[0] === '[') {
      while (!this.isEof()) {
        var char = this.nextCharacter()
        if (char.value === '=') break
      }
    }
  }

  parse (nested) {
    var character, parser, quote
    this.consumeDimensions()
    while (!this.isEof()) {
      character = this.nextCharacter()
      if (character.value === '{' && !quote) {
        this.dimension++
        if (this.dimension > 1) {
          parser = new ArrayParser(this.source.substr(this.position - 1), this.transform)
          this.entries.push(parser.parse(true))
          this.position += parser.position - 2
        }
      } else if (character.value === '}' && !quote) {
        this.dimension--
        if (!this.dimension) {
          this.newEntry()
          if (nested) return this.entries
        }
      } else if (character.value === '"' && !character.escaped) {
        if (quote) this.newEntry(true)
        quote = !quote
      } else if (character.value === ',' && !quote) {
        this.newEntry()
      } else {
        this.record(character.value)
      }
    }
    if (this.dimension !== 0) {
      throw new Error('array dimension not balanced')
    }
    return this.entries
  }
}

function identity (value) {
  return value
}


/***/ }),

/***/ 463:
/***/ ((module) => {



var bufferFrom = Buffer.from || Buffer

module.exports = function parseBytea (input) {
  if (/^\\x/.test(input)) {
    // new 'hex' style response (pg >9.0)
    return bufferFrom(input.substr(2), 'hex')
  }
  var output = ''
  var i = 0
  while (i < input.length) {
    if (input[i] !== '\\') {
      output += input[i]
      ++i
    } else {
      if (/[0-7]{3}/.test(input.substr(i + 1, 3))) {
        output += String.fromCharCode(parseInt(input.substr(i + 1, 3), 8))
        i += 4
      } else {
        var backslashes = 1
        while (i + backslashes < input.length && input[i + backslashes] === '\\') {
          backslashes++
        }
        for (var k = 0; k < Math.floor(backslashes / 2); ++k) {
          output += '\\'
        }
        i += Math.floor(backslashes / 2) * 2
      }
    }
  }
  return bufferFrom(output, 'binary')
}


/***/ }),

/***/ 2690:
/***/ ((module) => {



var DATE_TIME = /(\d{1,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,})?.*?( BC)?$/
var DATE = /^(\d{1,})-(\d{2})-(\d{2})( BC)?$/
var TIME_ZONE = /([Z+-])(\d{2})?:?(\d{2})?:?(\d{2})?/
var INFINITY = /^-?infinity$/

module.exports = function parseDate (isoDate) {
  if (INFINITY.test(isoDate)) {
    // Capitalize to Infinity before passing to Number
    return Number(isoDate.replace('i', 'I'))
  }
  var matches = DATE_TIME.exec(isoDate)

  if (!matches) {
    // Force YYYY-MM-DD dates to be parsed as local time
    return getDate(isoDate) || null
  }

  var isBC = !!matches[8]
  var year = parseInt(matches[1], 10)
  if (isBC) {
    year = bcYearToNegativeYear(year)
  }

  var month = parseInt(matches[2], 10) - 1
  var day = matches[3]
  var hour = parseInt(matches[4], 10)
  var minute = parseInt(matches[5], 10)
  var second = parseInt(matches[6], 10)

  var ms = matches[7]
  ms = ms ? 1000 * parseFloat(ms) : 0

  var date
  var offset = timeZoneOffset(isoDate)
  if (offset != null) {
    date = new Date(Date.UTC(year, month, day, hour, minute, second, ms))

    // Account for years from 0 to 99 being interpreted as 1900-1999
    // by Date.UTC / the multi-argument form of the Date constructor
    if (is0To99(year)) {
      date.setUTCFullYear(year)
    }

    if (offset !== 0) {
      date.setTime(date.getTime() - offset)
    }
  } else {
    date = new Date(year, month, day, hour, minute, second, ms)

    if (is0To99(year)) {
      date.setFullYear(year)
    }
  }

  return date
}

function getDate (isoDate) {
  var matches = DATE.exec(isoDate)
  if (!matches) {
    return
  }

  var year = parseInt(matches[1], 10)
  var isBC = !!matches[4]
  if (isBC) {
    year = bcYearToNegativeYear(year)
  }

  var month = parseInt(matches[2], 10) - 1
  var day = matches[3]
  // YYYY-MM-DD will be parsed as local time
  var date = new Date(year, month, day)

  if (is0To99(year)) {
    date.setFullYear(year)
  }

  return date
}

// match timezones:
// Z (UTC)
// -05
// +06:30
function timeZoneOffset (isoDate) {
  if (isoDate.endsWith('+00')) {
    return 0
  }

  var zone = TIME_ZONE.exec(isoDate.split(' ')[1])
  if (!zone) return
  var type = zone[1]

  if (type === 'Z') {
    return 0
  }
  var sign = type === '-' ? -1 : 1
  var offset = parseInt(zone[2], 10) * 3600 +
    parseInt(zone[3] || 0, 10) * 60 +
    parseInt(zone[4] || 0, 10)

  return offset * sign * 1000
}

function bcYearToNegativeYear (year) {
  // Account for numerical difference between representations of BC years
  // See: https://github.com/bendrucker/postgres-date/issues/5
  return -(year - 1)
}

function is0To99 (num) {
  return num >= 0 && num < 100
}


/***/ }),

/***/ 8755:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



var extend = __nccwpck_require__(223)

module.exports = PostgresInterval

function PostgresInterval (raw) {
  if (!(this instanceof PostgresInterval)) {
    return new PostgresInterval(raw)
  }
  extend(this, parse(raw))
}
var properties = ['seconds', 'minutes', 'hours', 'days', 'months', 'years']
PostgresInterval.prototype.toPostgres = function () {
  var filtered = properties.filter(this.hasOwnProperty, this)

  // In addition to `properties`, we need to account for fractions of seconds.
  if (this.milliseconds && filtered.indexOf('seconds') < 0) {
    filtered.push('seconds')
  }

  if (filtered.length === 0) return '0'
  return filtered
    .map(function (property) {
      var value = this[property] || 0

      // Account for fractional part of seconds,
      // remove trailing zeroes.
      if (property === 'seconds' && this.milliseconds) {
        value = (value + this.milliseconds / 1000).toFixed(6).replace(/\.?0+$/, '')
      }

      return value + ' ' + property
    }, this)
    .join(' ')
}

var propertiesISOEquivalent = {
  years: 'Y',
  months: 'M',
  days: 'D',
  hours: 'H',
  minutes: 'M',
  seconds: 'S'
}
var dateProperties = ['years', 'months', 'days']
var timeProperties = ['hours', 'minutes', 'seconds']
// according to ISO 8601
PostgresInterval.prototype.toISOString = PostgresInterval.prototype.toISO = function () {
  var datePart = dateProperties
    .map(buildProperty, this)
    .join('')

  var timePart = timeProperties
    .map(buildProperty, this)
    .join('')

  return 'P' + datePart + 'T' + timePart

  function buildProperty (property) {
    var value = this[property] || 0

    // Account for fractional part of seconds,
    // remove trailing zeroes.
    if (property === 'seconds' && this.milliseconds) {
      value = (value + this.milliseconds / 1000).toFixed(6).replace(/0+$/, '')
    }

    return value + propertiesISOEquivalent[property]
  }
}

var NUMBER = '([+-]?\\d+)'
var YEAR = NUMBER + '\\s+years?'
var MONTH = NUMBER + '\\s+mons?'
var DAY = NUMBER + '\\s+days?'
var TIME = '([+-])?([\\d]*):(\\d\\d):(\\d\\d)\\.?(\\d{1,6})?'
var INTERVAL = new RegExp([YEAR, MONTH, DAY, TIME].map(function (regexString) {
  return '(' + regexString + ')?'
})
  .join('\\s*'))

// Positions of values in regex match
var positions = {
  years: 2,
  months: 4,
  days: 6,
  hours: 9,
  minutes: 10,
  seconds: 11,
  milliseconds: 12
}
// We can use negative time
var negatives = ['hours', 'minutes', 'seconds', 'milliseconds']

function parseMilliseconds (fraction) {
  // add omitted zeroes
  var microseconds = fraction + '000000'.slice(fraction.length)
  return parseInt(microseconds, 10) / 1000
}

function parse (interval) {
  if (!interval) return {}
  var matches = INTERVAL.exec(interval)
  var isNegative = matches[8] === '-'
  return Object.keys(positions)
    .reduce(function (parsed, property) {
      var position = positions[property]
      var value = matches[position]
      // no empty string
      if (!value) return parsed
      // milliseconds are actually microseconds (up to 6 digits)
      // with omitted trailing zeroes.
      value = property === 'milliseconds'
        ? parseMilliseconds(value)
        : parseInt(value, 10)
      // no zeros
      if (!value) return parsed
      if (isNegative && ~negatives.indexOf(property)) {
        value *= -1
      }
      parsed[property] = value
      return parsed
    }, {})
}


/***/ }),

/***/ 5286:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

/*
Copyright (c) 2014-2021, Matteo Collina <hello@matteocollina.com>

Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR
IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
*/



const { Transform } = __nccwpck_require__(2203)
const { StringDecoder } = __nccwpck_require__(3193)
const kLast = Symbol('last')
const kDecoder = Symbol('decoder')

function transform (chunk, enc, cb) {
  let list
  if (this.overflow) { // Line buffer is full. Skip to start of next line.
    const buf = this[kDecoder].write(chunk)
    list = buf.split(this.matcher)

    if (list.length === 1) return cb() // Line ending not found. Discard entire chunk.

    // Line ending found. Discard trailing fragment of previous line and reset overflow state.
    list.shift()
    this.overflow = false
  } else {
    this[kLast] += this[kDecoder].write(chunk)
    list = this[kLast].split(this.matcher)
  }

  this[kLast] = list.pop()

  for (let i = 0; i < list.length; i++) {
    try {
      push(this, this.mapper(list[i]))
    } catch (error) {
      return cb(error)
    }
  }

  this.overflow = this[kLast].length > this.maxLength
  if (this.overflow && !this.skipOverflow) {
    cb(new Error('maximum buffer reached'))
    return
  }

  cb()
}

function flush (cb) {
  // forward any gibberish left in there
  this[kLast] += this[kDecoder].end()

  if (this[kLast]) {
    try {
      push(this, this.mapper(this[kLast]))
    } catch (error) {
      return cb(error)
    }
  }

  cb()
}

function push (self, val) {
  if (val !== undefined) {
    self.push(val)
  }
}

function noop (incoming) {
  return incoming
}

function split (matcher, mapper, options) {
  // Set defaults for any arguments not supplied.
  matcher = matcher || /\r?\n/
  mapper = mapper || noop
  options = options || {}

  // Test arguments explicitly.
  switch (arguments.length) {
    case 1:
      // If mapper is only argument.
      if (typeof matcher === 'function') {
        mapper = matcher
        matcher = /\r?\n/
      // If options is only argument.
      } else if (typeof matcher === 'object' && !(matcher instanceof RegExp) && !matcher[Symbol.split]) {
        options = matcher
        matcher = /\r?\n/
      }
      break

    case 2:
      // If mapper and options are arguments.
      if (typeof matcher === 'function') {
        options = mapper
        mapper = matcher
        matcher = /\r?\n/
      // If matcher and options are arguments.
      } else if (typeof mapper === 'object') {
        options = mapper
        mapper = noop
      }
  }

  options = Object.assign({}, options)
  options.autoDestroy = true
  options.transform = transform
  options.flush = flush
  options.readableObjectMode = true

  const stream = new Transform(options)

  stream[kLast] = ''
  stream[kDecoder] = new StringDecoder('utf8')
  stream.matcher = matcher
  stream.mapper = mapper
  stream.maxLength = options.maxLength
  stream.skipOverflow = options.skipOverflow || false
  stream.overflow = false
  stream._destroy = function (err, cb) {
    // Weird Node v12 bug that we need to work around
    this._writableState.errorEmitted = false
    cb(err)
  }

  return stream
}

module.exports = split


/***/ }),

/***/ 223:
/***/ ((module) => {

module.exports = extend

var hasOwnProperty = Object.prototype.hasOwnProperty;

function extend(target) {
    for (var i = 1; i < arguments.length; i++) {
        var source = arguments[i]

        for (var key in source) {
            if (hasOwnProperty.call(source, key)) {
                target[key] = source[key]
            }
        }
    }

    return target
}


/***/ }),

/***/ 7318:
/***/ ((module, __unused_webpack___webpack_exports__, __nccwpck_require__) => {

__nccwpck_require__.a(module, async (__webpack_handle_async_dependencies__, __webpack_async_result__) => { try {
/* harmony import */ var _cli_js__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(19);
/* harmony import */ var _demo_run_js__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(1844);


process.exitCode = await (0,_cli_js__WEBPACK_IMPORTED_MODULE_0__/* .runCli */ .ak)(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), env: process.env, cwd: process.cwd() }, _demo_run_js__WEBPACK_IMPORTED_MODULE_1__/* .runDemo */ .nN);

__webpack_async_result__();
} catch(e) { __webpack_async_result__(e); } }, 1);

/***/ }),

/***/ 19:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  ak: () => (/* binding */ runCli)
});

// UNUSED EXPORTS: cliEnvironment, parseArgs, parseDotEnv, usage

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(3024);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __nccwpck_require__(6760);
var external_node_path_default = /*#__PURE__*/__nccwpck_require__.n(external_node_path_);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __nccwpck_require__(8161);
var external_node_os_default = /*#__PURE__*/__nccwpck_require__.n(external_node_os_);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __nccwpck_require__(3916);
// EXTERNAL MODULE: ./src/inputs.ts
var inputs = __nccwpck_require__(8422);
// EXTERNAL MODULE: ./src/postgres/connection.ts + 1 modules
var connection = __nccwpck_require__(8077);
;// CONCATENATED MODULE: ./src/config.ts
// One typed Config, built in one place from the inputs (action) or flags (CLI); bad values throw a
// ConfigurationError whose message names the input and the fix.





function inputDefault(name) {
    return inputs/* INPUTS */.mc.find((i) => i.name === name).default;
}
function oneOf(name, value, allowed) {
    const v = value.trim().toLowerCase();
    if (allowed.includes(v))
        return v;
    throw new errors/* ConfigurationError */.j1(`Input ${name} must be one of ${allowed.join(', ')}; got "${value}"`);
}
function parseBoolean(name, value) {
    const v = value.trim().toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(v))
        return true;
    if (['false', 'no', '0', 'off'].includes(v))
        return false;
    throw new errors/* ConfigurationError */.j1(`Input ${name} must be true or false; got "${value}"`);
}
function parseWholeNumber(name, value, min, max = Number.MAX_SAFE_INTEGER) {
    const v = value.trim();
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        throw new errors/* ConfigurationError */.j1(`Input ${name} must be a whole number from ${min} to ${max}; got "${value}"`);
    }
    return Number(v);
}
/** A PostgreSQL interval that lock_timeout and pg_dump --lock-wait-timeout both accept. */
function parseTimeout(name, value) {
    const v = value.trim();
    if (!/^\d+\s*(ms|s|min|h)?$/.test(v)) {
        throw new errors/* ConfigurationError */.j1(`Input ${name} must be a duration such as 500ms, 60s, 5min or 1h; got "${value}"`);
    }
    return v.replace(/\s+/g, '');
}
function buildConfig(get, env = process.env) {
    const input = (name) => get(name) ?? inputDefault(name);
    const optional = (name) => {
        const v = get(name);
        return v === undefined || v.trim() === '' ? undefined : v;
    };
    const mode = oneOf('mode', input('mode'), inputs/* MODES */.FN);
    const destination = input('destination')
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean)
        .map((d) => {
        if (d !== 'local')
            throw new errors/* ConfigurationError */.j1(`Input destination: "${d}" is not supported; use local`);
        return d;
    });
    if (destination.length === 0)
        throw new errors/* ConfigurationError */.j1('Input destination is empty; use local');
    const format = oneOf('format', input('format'), ['custom', 'plain', 'directory']);
    const method = oneOf('compression', input('compression'), ['gzip', 'zstd', 'none']);
    const levelText = optional('compression-level');
    const compression = { method };
    if (levelText !== undefined) {
        if (method === 'none')
            throw new errors/* ConfigurationError */.j1('Input compression-level needs compression gzip or zstd');
        compression.level = parseWholeNumber('compression-level', levelText, 1, method === 'gzip' ? 9 : 19);
    }
    const databaseUrl = optional('database-url');
    const source = (0,connection/* resolveConnection */.XC)(databaseUrl, env);
    const testRestoreUrl = optional('test-restore-url');
    if (testRestoreUrl)
        (0,connection/* resolveConnection */.XC)(testRestoreUrl, {}, 'test-restore-url');
    const backup = input('backup').trim();
    if (/[\0\n\r]/.test(backup))
        throw new errors/* ConfigurationError */.j1('Input backup must not contain newlines or NUL characters');
    const jobsText = optional('jobs');
    const config = {
        mode,
        source,
        databaseNamed: databaseUrl !== undefined || !!env.PGDATABASE,
        destination,
        backupDir: external_node_path_default().resolve(input('backup-dir')),
        format,
        compression,
        verify: oneOf('verify', input('verify'), ['none', 'quick', 'full']),
        backup: backup || 'latest',
        all: parseBoolean('all', input('all')),
        createRoles: parseBoolean('create-roles', input('create-roles')),
        retention: {
            days: parseWholeNumber('retention-days', input('retention-days'), 0, 36500),
            keepMin: parseWholeNumber('keep-min', input('keep-min'), 1, 100000),
            daily: parseWholeNumber('keep-daily', input('keep-daily'), 0, 100000),
            weekly: parseWholeNumber('keep-weekly', input('keep-weekly'), 0, 100000),
            monthly: parseWholeNumber('keep-monthly', input('keep-monthly'), 0, 100000),
            yearly: parseWholeNumber('keep-yearly', input('keep-yearly'), 0, 100000),
        },
        dryRun: parseBoolean('dry-run', input('dry-run')),
        jobs: jobsText === undefined ? Math.max(1, external_node_os_default().availableParallelism()) : parseWholeNumber('jobs', jobsText, 1, 64),
        lockWaitTimeout: parseTimeout('lock-wait-timeout', input('lock-wait-timeout')),
        progressSeconds: env.PGVB_PROGRESS_SECONDS ? Number(env.PGVB_PROGRESS_SECONDS) || 10 : 10,
        env,
        secrets: [databaseUrl, testRestoreUrl, source.password].filter((s) => !!s),
    };
    if (testRestoreUrl)
        config.testRestoreUrl = testRestoreUrl;
    const pgBinDir = optional('pg-bin-dir');
    if (pgBinDir)
        config.pgBinDir = external_node_path_default().resolve(pgBinDir);
    return config;
}

// EXTERNAL MODULE: ./src/exec.ts
var exec = __nccwpck_require__(3190);
;// CONCATENATED MODULE: ./src/context.ts

const handlers = new Set();
let installed = false;
/** The entry points' onCancel: runs every registered cleanup on SIGINT/SIGTERM, then exits. */
function onCancel(fn) {
    if (!installed) {
        installed = true;
        for (const [signal, code] of [
            ['SIGINT', 130],
            ['SIGTERM', 143],
        ]) {
            process.once(signal, () => {
                (0,exec/* terminateChildren */.rK)();
                void (async () => {
                    for (const h of [...handlers].reverse()) {
                        try {
                            await h();
                        }
                        catch {
                            /* best effort while exiting */
                        }
                    }
                    process.exit(code);
                })();
            });
        }
    }
    handlers.add(fn);
    return () => handlers.delete(fn);
}

;// CONCATENATED MODULE: ./src/logger.ts
// The core never imports @actions/core: it logs through this interface, so the same code runs from the
// action and from the CLI, and every line passes through the secret scrubber first.
/** Replaces every registered secret (and its URL-encoded form) in text. */
class Secrets {
    values = new Set();
    /**
     * Registers a secret; with `derived`, also the forms it takes inside URLs and headers (percent-encoded,
     * base64). Returns the forms that were new, for the runner's masking.
     */
    add(value, derived = true) {
        if (!value || value.length < 3)
            return [];
        const forms = [value];
        if (derived) {
            forms.push(encodeURIComponent(value), Buffer.from(value).toString('base64'));
            // Percent-encoding of everything but unreserved characters, as some tools print it.
            forms.push(encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`));
        }
        const added = [...new Set(forms)].filter((f) => !this.values.has(f));
        for (const f of added)
            this.values.add(f);
        return added;
    }
    list() {
        return [...this.values];
    }
    scrub(text) {
        let out = text;
        // Longest first, so a value that contains another is replaced whole.
        for (const v of [...this.values].sort((a, b) => b.length - a.length)) {
            out = out.split(v).join('***');
        }
        // Whatever a URL's password is, never print it.
        // (The documentation placeholder "password" is left as it is.)
        return out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)@/gi, (m, user, pw) => (pw === 'password' ? m : `${user}***@`));
    }
}
/** A logger for the CLI and tests: plain lines on stderr/stdout. */
class ConsoleLogger {
    secrets;
    verbose;
    write;
    constructor(secrets, verbose = false, write = (line) => process.stderr.write(line + '\n')) {
        this.secrets = secrets;
        this.verbose = verbose;
        this.write = write;
    }
    info(message) {
        this.write(this.secrets.scrub(message));
    }
    warning(message) {
        this.write('warning: ' + this.secrets.scrub(message));
    }
    error(message) {
        this.write('error: ' + this.secrets.scrub(message));
    }
    debug(message) {
        if (this.verbose)
            this.write('debug: ' + this.secrets.scrub(message));
    }
    async group(name, fn) {
        this.write(`== ${this.secrets.scrub(name)}`);
        return fn();
    }
}
/** Collects log lines (tests). */
class MemoryLogger {
    lines = [];
    info(m) {
        this.lines.push(m);
    }
    warning(m) {
        this.lines.push('warning: ' + m);
    }
    error(m) {
        this.lines.push('error: ' + m);
    }
    debug(m) {
        this.lines.push('debug: ' + m);
    }
    async group(name, fn) {
        this.lines.push('== ' + name);
        return fn();
    }
}

;// CONCATENATED MODULE: ./src/archive/manifest.ts
// The manifest: written last, it is what makes an archive a backup. It records what the archive holds (exact,
// from the dump's snapshot) and how to check it; it holds no data values and no secrets.



const MANIFEST_VERSION = 1;
const TOOL_NAME = 'pgvector-backup';
/** `<db>_YYYYMMDD_HHMMSS`, the old kit's naming; the database part keeps only file-name-safe characters. */
function backupName(database, at) {
    // No path separators, no leading dot, no "..": the name is used in paths and object keys.
    const safe = database.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/\.{2,}/g, '_').replace(/^\./, '_') || 'db';
    const p = (n) => String(n).padStart(2, '0');
    const stamp = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}_${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
    return `${safe}_${stamp}`;
}
/** The file-name prefix of a database's backups (for listing only that database's). */
function namePrefix(database) {
    return backupName(database, new Date(0)).replace(/_19700101_000000$/, '_');
}
function archiveSuffix(format, compression) {
    if (format === 'directory')
        return '.dir';
    const base = format === 'custom' ? '.dump' : '.sql';
    if (compression.applied !== 'stream')
        return base;
    return base + (compression.method === 'gzip' ? '.gz' : '.zst');
}
function manifestPathFor(dir, name) {
    return external_node_path_default().join(dir, `${name}.json`);
}
/** Writes the manifest under a temporary name and renames it into place: readers see all of it or nothing. */
async function writeManifest(dir, manifest) {
    const final = manifestPathFor(dir, manifest.name);
    const tmp = `${final}.partial`;
    const fh = await external_node_fs_.promises.open(tmp, 'w', 0o644);
    try {
        await fh.writeFile(JSON.stringify(manifest, null, 2) + '\n');
        await fh.sync();
    }
    finally {
        await fh.close();
    }
    await external_node_fs_.promises.rename(tmp, final);
    return final;
}
const SHA256 = /^[0-9a-f]{64}$/;
/** Parses and checks a manifest; every problem is a BackupError naming the file and the fix. */
function parseManifest(text, file) {
    const where = external_node_path_default().basename(file);
    if (text.trim() === '')
        throw new errors/* BackupError */.hj(`Manifest ${where} is empty`, 'The backup is incomplete; use another backup or run a new one');
    let m;
    try {
        m = JSON.parse(text);
    }
    catch (err) {
        throw new errors/* BackupError */.hj(`Manifest ${where} is not valid JSON (${err.message})`, 'The backup is incomplete or damaged; use another backup or run a new one');
    }
    const problems = [];
    const obj = m;
    if (typeof m !== 'object' || m === null)
        problems.push('not an object');
    else {
        if (obj.tool?.name !== TOOL_NAME)
            problems.push('tool.name');
        if (typeof obj.manifestVersion !== 'number' || obj.manifestVersion > MANIFEST_VERSION)
            problems.push('manifestVersion');
        if (typeof obj.name !== 'string' || !obj.name || /[/\\\0\n]|\.\./.test(obj.name))
            problems.push('name');
        if (typeof obj.createdAt !== 'string' || Number.isNaN(Date.parse(obj.createdAt)))
            problems.push('createdAt');
        if (typeof obj.database !== 'string')
            problems.push('database');
        if (!['custom', 'plain', 'directory'].includes(obj.format))
            problems.push('format');
        if (!obj.compression || !['gzip', 'zstd', 'none'].includes(obj.compression.method))
            problems.push('compression');
        const a = obj.archive;
        if (!a || typeof a.file !== 'string' || !a.file || /[/\\\0\n]|^\.\.?$/.test(a.file))
            problems.push('archive.file');
        if (!a || !Number.isSafeInteger(a.size) || a.size < 0)
            problems.push('archive.size');
        if (!a || typeof a.sha256 !== 'string' || !SHA256.test(a.sha256))
            problems.push('archive.sha256');
        if (a?.files && (!Array.isArray(a.files) || a.files.some((f) => f === null || typeof f !== 'object' || typeof f.path !== 'string' || /(^|[/\\])\.\.([/\\]|$)|^\//.test(f.path) || !SHA256.test(f.sha256))))
            problems.push('archive.files');
        if (!Array.isArray(obj.tables))
            problems.push('tables');
        if (!Array.isArray(obj.extensions))
            problems.push('extensions');
        if (!Array.isArray(obj.indexes))
            problems.push('indexes');
        if (!Array.isArray(obj.sequences))
            problems.push('sequences');
    }
    if (problems.length) {
        throw new errors/* BackupError */.hj(`Manifest ${where} is invalid (${problems.join(', ')})`, 'The backup cannot be trusted; use another backup or run a new one');
    }
    const out = m;
    out.knn ??= null;
    out.verification ??= null;
    out.roles ??= [];
    out.largeObjects ??= 0;
    return out;
}
async function readManifest(file) {
    let text;
    try {
        text = await external_node_fs_.promises.readFile(file, 'utf8');
    }
    catch (err) {
        const code = err.code;
        if (code === 'ENOENT')
            throw new errors/* BackupError */.hj(`Manifest ${external_node_path_default().basename(file)} is missing`, 'A backup without a manifest is incomplete; use another backup or run a new one', { cause: err });
        throw new errors/* BackupError */.hj(`Cannot read manifest ${file}: ${err.message}`, 'Check the file\'s permissions', { cause: err });
    }
    return parseManifest(text, file);
}

;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: external "node:stream"
const external_node_stream_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream");
;// CONCATENATED MODULE: external "node:stream/promises"
const promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream/promises");
;// CONCATENATED MODULE: external "node:zlib"
const external_node_zlib_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:zlib");
var external_node_zlib_default = /*#__PURE__*/__nccwpck_require__.n(external_node_zlib_namespaceObject);
;// CONCATENATED MODULE: ./src/archive/pipeline.ts
// Streaming: pg_dump's stdout flows through optional compression and a sha256/byte counter into a file, with
// backpressure and in constant memory. The exit status of every stage is checked: a dump whose producer failed
// is never mistaken for a complete one (the `pg_dump | gzip` trap of the old kit).








const DEFAULT_LEVEL = { gzip: 6, zstd: 3 };
/** Counts bytes and hashes them as they pass. */
class Meter extends external_node_stream_namespaceObject.Transform {
    hashing;
    bytes = 0;
    hash = (0,external_node_crypto_namespaceObject.createHash)('sha256');
    constructor(hashing = true) {
        super();
        this.hashing = hashing;
    }
    _transform(chunk, _enc, cb) {
        this.bytes += chunk.length;
        if (this.hashing)
            this.hash.update(chunk);
        cb(null, chunk);
    }
    digest() {
        return this.hash.digest('hex');
    }
}
const z = (external_node_zlib_default());
/** The zstd program as a stream stage, for Node versions whose zlib lacks zstd. Fails when it exits non-zero. */
function zstdProcess(args) {
    const child = (0,exec/* spawnCommand */.nj)({ file: 'zstd', args }, ['pipe', 'pipe', 'pipe']);
    const stderr = new exec/* Tail */.PW();
    child.stderr.on('data', (d) => stderr.push(d));
    // The readable side ends only after zstd exited 0, so a failing zstd cannot pass for a short stream.
    const out = new external_node_stream_namespaceObject.PassThrough();
    child.stdout.pipe(out, { end: false });
    const duplex = external_node_stream_namespaceObject.Duplex.from({ writable: child.stdin, readable: out });
    child.once('error', (err) => duplex.destroy(new errors/* BackupError */.hj('zstd is not available', 'Run on Node 24 (the action does) or install the zstd program', { cause: err })));
    child.once('close', (code, signal) => {
        if (code === 0)
            out.end();
        else
            duplex.destroy(new Error(`${(0,exec/* describeExit */.KE)('zstd', code, signal)}: ${(0,exec/* lastLines */.w$)(stderr.toString())}`));
    });
    return duplex;
}
function compressor(method, level) {
    if (method === 'none')
        return undefined;
    const lvl = level ?? DEFAULT_LEVEL[method];
    if (method === 'gzip')
        return external_node_zlib_default().createGzip({ level: lvl });
    if (z.createZstdCompress && z.constants.ZSTD_c_compressionLevel !== undefined) {
        return z.createZstdCompress({ params: { [z.constants.ZSTD_c_compressionLevel]: lvl } });
    }
    return zstdProcess([`-${lvl}`, '-q', '-c']);
}
function decompressor(method) {
    if (method === 'none')
        return undefined;
    if (method === 'gzip')
        return external_node_zlib_default().createGunzip();
    if (z.createZstdDecompress)
        return z.createZstdDecompress();
    return zstdProcess(['-d', '-q', '-c']);
}
/** Logs progress every `seconds` while `work` runs. */
async function withProgress(logger, seconds, line, work) {
    const start = Date.now();
    const timer = setInterval(() => logger.info(line((Date.now() - start) / 1000)), Math.max(0.2, seconds) * 1000);
    timer.unref();
    try {
        return await work;
    }
    finally {
        clearInterval(timer);
    }
}
function formatBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
/**
 * Runs the dump command and streams its stdout into `outFile` (created exclusively). Resolves only when the
 * command exited 0 and every byte is on disk (fsync); otherwise rejects and leaves the caller to remove outFile.
 */
async function streamDump(opts) {
    const name = opts.name ?? external_node_path_default().basename(opts.command.file);
    const child = (0,exec/* spawnCommand */.nj)(opts.command, ['ignore', 'pipe', 'pipe']);
    const stderr = new exec/* Tail */.PW();
    child.stderr.on('data', (d) => stderr.push(d));
    const exited = (0,exec/* waitForExit */.zE)(child);
    const rawMeter = new Meter(false);
    const outMeter = new Meter(true);
    const stages = [child.stdout, rawMeter];
    const comp = opts.compression ? compressor(opts.compression.method, opts.compression.level) : undefined;
    if (comp)
        stages.push(comp);
    stages.push(outMeter);
    // flush: the file is fsynced before it closes, so a renamed archive is on disk.
    const file = (0,external_node_fs_.createWriteStream)(opts.outFile, { flags: 'wx', mode: 0o600, flush: true });
    stages.push(file);
    const started = Date.now();
    const progress = (elapsed) => `  ${name}: ${formatBytes(rawMeter.bytes)} dumped, ${formatBytes(outMeter.bytes)} written, ` +
        `${formatBytes(rawMeter.bytes / Math.max(elapsed, 0.001))}/s, ${elapsed.toFixed(0)} s`;
    let pipeErr;
    const flow = (0,promises_namespaceObject.pipeline)(...stages).catch((err) => {
        pipeErr = err;
        // The file side failed (disk full, I/O error): stop the producer instead of letting it block forever.
        child.kill('SIGTERM');
    });
    const [{ code, signal }] = await withProgress(opts.logger, opts.progressSeconds, progress, Promise.all([exited, flow]));
    // A failed write side (disk full) is the cause when both failed: we stopped pg_dump because of it.
    if (pipeErr)
        throw writeError(pipeErr, opts.outFile);
    if (code !== 0 || signal) {
        throw new errors/* BackupError */.hj(`${(0,exec/* describeExit */.KE)(name, code, signal)}: ${(0,exec/* lastLines */.w$)(stderr.toString()) || 'no error output'}`, dumpHint(stderr.toString()));
    }
    opts.logger.debug(`${name} finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { dumpBytes: rawMeter.bytes, size: outMeter.bytes, sha256: outMeter.digest() };
}
function dumpHint(stderr) {
    if (/lock timeout|could not obtain lock/i.test(stderr))
        return 'Another session holds a conflicting lock; retry when it finishes or raise lock-wait-timeout';
    if (/terminat|server closed the connection|connection.*lost/i.test(stderr))
        return 'The database connection was lost during the dump (server restart, terminated backend or network); run the backup again';
    if (/permission denied/i.test(stderr))
        return 'The backup role lacks privileges on an object: grant it SELECT (or use a role with pg_read_all_data)';
    if (/server version mismatch/i.test(stderr))
        return 'Use a pg_dump at least as new as the server (pg-bin-dir)';
    if (/invalid snapshot|snapshot/i.test(stderr))
        return 'The snapshot could not be shared; connect directly, not through a transaction-mode pooler';
    return 'See the error above; nothing was kept from this run';
}
function writeError(err, file) {
    const code = err.code;
    const dir = external_node_path_default().dirname(file);
    if (code === 'ENOSPC' || code === 'EDQUOT')
        return new errors/* BackupError */.hj(`No space left on the device of ${dir}`, 'Free space there, lower retention-days, or set backup-dir to a larger volume', { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
        return new errors/* BackupError */.hj(`Cannot write to ${dir} (${code})`, 'Make backup-dir writable by this user or choose another backup-dir', { cause: err });
    if (code === 'ENOTDIR' || code === 'ENOENT')
        return new errors/* BackupError */.hj(`backup-dir ${dir} is not a usable directory (${code})`, 'Set backup-dir to a directory path (it is created when missing)', { cause: err });
    if (err instanceof errors/* BackupError */.hj)
        return err;
    return new errors/* BackupError */.hj(`Writing ${file} failed: ${err.message}`, 'Check the disk and backup-dir', { cause: err });
}
/** sha256 and size of a file, streamed. */
async function hashFile(file) {
    const meter = new Meter(true);
    await (0,promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(file, { highWaterMark: 1 << 20 }), meter, new external_node_stream_namespaceObject.PassThrough().resume());
    return { size: meter.bytes, sha256: meter.digest() };
}
/** Per-file hashes of a directory archive and a digest over the sorted "sha256  path" lines. */
async function hashDirectory(dir) {
    const names = (await external_node_fs_.promises.readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => external_node_path_default().relative(dir, external_node_path_default().join(e.parentPath, e.name)))
        .sort();
    const files = [];
    let size = 0;
    for (const n of names) {
        const h = await hashFile(external_node_path_default().join(dir, n));
        files.push({ path: n, ...h });
        size += h.size;
    }
    const sha256 = (0,external_node_crypto_namespaceObject.createHash)('sha256')
        .update(files.map((f) => `${f.sha256}  ${f.path}\n`).join(''))
        .digest('hex');
    return { size, sha256, files };
}

;// CONCATENATED MODULE: ./src/archive/plan.ts
// Pure argument builders: how a format and compression turn into pg_dump/pg_restore/psql arguments and a file
// suffix. Table-tested; no I/O here.



/**
 * custom/directory archives use pg_dump's own compression when it supports the method (gzip always, zstd from
 * pg_dump 16), so they stay restorable with pg_restore alone; otherwise (plain, or zstd with an older pg_dump)
 * the stream is compressed by us and the file gets .gz/.zst.
 */
function planCompression(format, method, level, pgDumpMajor) {
    const lvl = method === 'none' ? null : (level ?? DEFAULT_LEVEL[method]);
    let plan;
    if (method === 'none') {
        plan = { method, level: null, applied: 'none', ...(format === 'plain' ? {} : { pgDumpZ: '0' }) };
    }
    else if (format === 'plain') {
        plan = { method, level: lvl, applied: 'stream' };
    }
    else if (method === 'gzip') {
        plan = { method, level: lvl, applied: 'pg_dump', pgDumpZ: pgDumpMajor >= 16 ? `gzip:${lvl}` : String(lvl) };
    }
    else if (pgDumpMajor >= 16) {
        plan = { method, level: lvl, applied: 'pg_dump', pgDumpZ: `zstd:${lvl}` };
    }
    else if (format === 'custom') {
        plan = { method, level: lvl, applied: 'stream', pgDumpZ: '0' };
    }
    else {
        throw new errors/* ConfigurationError */.j1(`format directory with compression zstd needs pg_dump 16 or newer (found ${pgDumpMajor}); use compression gzip, or format custom`);
    }
    return { ...plan, suffix: archiveSuffix(format, plan) };
}
/** pg_dump arguments. The connection comes from the environment (PGHOST ... PGPASSWORD), never argv. */
function pgDumpArgs(o) {
    const args = ['--no-password', `--lock-wait-timeout=${o.lockWaitTimeout}`];
    if (o.snapshot)
        args.push(`--snapshot=${o.snapshot}`);
    switch (o.format) {
        case 'custom':
            args.push('--format=custom');
            break;
        case 'plain':
            args.push('--format=plain');
            break;
        case 'directory':
            if (!o.outputDir)
                throw new Error('directory format needs an output directory');
            args.push('--format=directory', `--jobs=${o.jobs}`, `--file=${o.outputDir}`);
            break;
    }
    if (o.compression.pgDumpZ !== undefined)
        args.push(`--compress=${o.compression.pgDumpZ}`);
    return args;
}
/**
 * A conninfo string that names only the database, so that a name with spaces, '=' or a URL-like text cannot be
 * taken for connection settings; host, user and password still come from the environment.
 */
function conninfoDbname(database) {
    return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
/** pg_restore arguments; the target's host, user and password come from the environment. */
function pgRestoreArgs(o) {
    const args = ['--no-password', '--exit-on-error', `--format=${o.format}`];
    args.push(`--dbname=${conninfoDbname(o.database)}`);
    if (o.section)
        args.push(`--section=${o.section}`);
    if (o.noOwner)
        args.push('--no-owner', '--no-acl');
    if (o.singleTransaction)
        args.push('--single-transaction');
    else if (o.jobs > 1 && o.input && o.section !== 'pre-data')
        args.push(`--jobs=${o.jobs}`);
    if (o.clean)
        args.push('--clean', '--if-exists');
    if (o.input)
        args.push(o.input);
    return args;
}
/** psql arguments for a plain SQL dump read from stdin: stop at the first error, no psqlrc. */
function psqlRestoreArgs(o) {
    const args = ['--no-password', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--file=-', '--output=/dev/null', `--dbname=${conninfoDbname(o.database)}`];
    if (o.singleTransaction)
        args.push('--single-transaction');
    return args;
}

;// CONCATENATED MODULE: ./src/postgres/inventory.ts

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;
const NOT_EXTENSION_MEMBER = (alias, catalog) => `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${alias}.oid AND d.deptype = 'e')`;
async function readServerInfo(client) {
    const r = await client.query(`SELECT current_database() AS db, current_setting('server_version') AS v, current_setting('server_version_num') AS n,
            (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgv, pg_is_in_recovery() AS rec`);
    const row = r.rows[0];
    const info = {
        database: row.db,
        serverVersion: row.v.split(' ')[0],
        serverVersionNum: Number(row.n),
        inRecovery: row.rec,
    };
    if (row.pgv)
        info.pgvectorVersion = row.pgv;
    return info;
}
/** The relations whose data a dump carries: user tables, partitions and materialized views. */
async function listTables(client) {
    const r = await client.query(`SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, c.relispartition,
            c.relpersistence::text AS relpersistence, c.relispopulated
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't' AND ${USER_SCHEMA}
        AND ${NOT_EXTENSION_MEMBER('c', 'pg_class')}
      ORDER BY n.nspname, c.relname`);
    return r.rows;
}
/**
 * Takes ACCESS SHARE locks on every table, one at a time so that a lock held by someone else can be named.
 * `lockTimeout` is a PostgreSQL interval ("60s").
 */
async function lockTables(client, tables, lockTimeout) {
    await client.query(`SELECT set_config('lock_timeout', $1, true)`, [lockTimeout]);
    // LOCK TABLE works on tables and partitioned tables; materialized views cannot be locked (pg_dump skips them too).
    for (const t of tables.filter((r) => r.relkind === 'r' || r.relkind === 'p')) {
        const q = `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`;
        try {
            await client.query(`LOCK TABLE ONLY ${q} IN ACCESS SHARE MODE`);
        }
        catch (err) {
            if (err.code === '55P03') {
                throw new errors/* BackupError */.hj(`Timed out after lock-wait-timeout (${lockTimeout}) waiting for a lock on table ${t.schema}.${t.name}: another session holds a conflicting lock`, 'Find it with SELECT * FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT granted OR relation = \'' +
                    `${t.schema}.${t.name}'::regclass; retry when it finishes (ALTER, DROP, TRUNCATE, VACUUM FULL, REINDEX), or raise lock-wait-timeout`, { cause: err });
            }
            throw err;
        }
    }
    await client.query(`SELECT set_config('lock_timeout', '0', true)`);
}
const KIND = { r: 'table', p: 'partitioned table', m: 'materialized view' };
/** Reads the whole inventory in the client's current transaction. */
async function readInventory(client, opts = {}) {
    const server = await readServerInfo(client);
    const rels = opts.tables ?? (await listTables(client));
    const oids = rels.map((r) => r.oid);
    const ext = await client.query(`SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
       FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname`);
    const cols = await client.query(`SELECT a.attrelid::int AS relid, a.attname AS name,
            CASE WHEN t.oid = 'bit'::regtype THEN 'bit' ELSE t.typname::text END AS type, a.atttypmod AS typmod
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND (t.oid = 'bit'::regtype OR (t.typname IN ('vector', 'halfvec', 'sparsevec') AND EXISTS (
              SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e' AND e.extname = 'vector')))
      ORDER BY a.attrelid, a.attnum`, [oids]);
    const colsByRel = new Map();
    for (const c of cols.rows) {
        const list = colsByRel.get(c.relid) ?? [];
        list.push(c);
        colsByRel.set(c.relid, list);
    }
    const tables = [];
    let done = 0;
    for (const rel of rels) {
        const vcols = colsByRel.get(rel.oid) ?? [];
        const kind = rel.relispartition ? 'partition' : KIND[rel.relkind];
        const hasData = rel.relkind === 'r' || (rel.relkind === 'm' && rel.relispopulated);
        let rows = 0;
        const nonNull = vcols.map(() => 0);
        if (hasData) {
            const q = `${client.escapeIdentifier(rel.schema)}.${client.escapeIdentifier(rel.name)}`;
            const counts = vcols.map((c, i) => `count(${client.escapeIdentifier(c.name)})::text AS c${i}`);
            const r = await client.query(`SELECT ${['count(*)::text AS n', ...counts].join(', ')} FROM ONLY ${q}`);
            const row = r.rows[0];
            rows = Number(row.n);
            vcols.forEach((_, i) => (nonNull[i] = Number(row[`c${i}`])));
        }
        tables.push({
            schema: rel.schema,
            name: rel.name,
            kind,
            unlogged: rel.relpersistence === 'u',
            rows,
            hasData,
            vectorColumns: vcols.map((c, i) => ({
                name: c.name,
                type: c.type,
                dimensions: c.typmod > 0 ? c.typmod : null,
                nonNull: nonNull[i],
            })),
        });
        done++;
        if (opts.onProgress && done % 50 === 0)
            opts.onProgress(`counted ${done}/${rels.length} tables`);
    }
    const idx = await client.query(`SELECT n.nspname AS schema, t.relname AS table, i.relname AS name, am.amname AS method,
            pg_get_indexdef(i.oid) AS definition, x.indisvalid AS valid
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = i.relnamespace
       JOIN pg_am am ON am.oid = i.relam
      WHERE x.indrelid = ANY($1::oid[])
      ORDER BY n.nspname, t.relname, i.relname`, [oids]);
    const seq = await client.query(`SELECT n.nspname AS schema, c.relname AS name,
            CASE WHEN has_sequence_privilege(c.oid, 'SELECT') THEN pg_sequence_last_value(c.oid)::text END AS last_value
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${USER_SCHEMA} AND ${NOT_EXTENSION_MEMBER('c', 'pg_class')}
      ORDER BY n.nspname, c.relname`);
    const lo = await client.query(`SELECT count(*)::text AS n FROM pg_largeobject_metadata`);
    const roles = await client.query(`WITH rels AS (
       SELECT c.relowner, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f') AND ${USER_SCHEMA}),
     nsp AS (SELECT n.nspowner, n.nspacl FROM pg_namespace n WHERE ${USER_SCHEMA}),
     ids AS (
       SELECT relowner AS id FROM rels
       UNION SELECT (aclexplode(relacl)).grantee FROM rels WHERE relacl IS NOT NULL
       UNION SELECT nspowner FROM nsp
       UNION SELECT (aclexplode(nspacl)).grantee FROM nsp WHERE nspacl IS NOT NULL)
     SELECT r.rolname AS role FROM ids JOIN pg_roles r ON r.oid = ids.id ORDER BY 1`);
    const inv = {
        database: server.database,
        serverVersion: server.serverVersion,
        serverVersionNum: server.serverVersionNum,
        extensions: ext.rows,
        tables,
        indexes: idx.rows,
        sequences: seq.rows.map((s) => ({ schema: s.schema, name: s.name, lastValue: s.last_value })),
        largeObjects: Number(lo.rows[0].n),
        roles: roles.rows.map((r) => r.role),
    };
    const knn = opts.knnFrom ? await runKnn(client, opts.knnFrom) : await chooseKnn(client, tables, opts.knnMaxRows ?? 1_000_000);
    if (knn)
        inv.knn = knn;
    return inv;
}
const KNN_K = 10;
const KEY_TYPES = new Set(['smallint', 'integer', 'bigint', 'uuid']);
const KNN_SAMPLES = 3;
/**
 * Picks the largest table with a vector/halfvec column and a single-column integer or uuid primary key, and
 * records the exact k nearest neighbours of a few of its rows. Keys only: no data values enter the manifest.
 */
async function chooseKnn(client, tables, maxRows) {
    const candidates = tables
        .filter((t) => t.hasData && t.rows > 0 && t.rows <= maxRows)
        .flatMap((t) => t.vectorColumns.filter((c) => (c.type === 'vector' || c.type === 'halfvec') && c.nonNull > 0).map((c) => ({ t, c })))
        .sort((a, b) => b.t.rows - a.t.rows);
    for (const { t, c } of candidates) {
        const pk = await client.query(`SELECT a.attname AS key, format_type(a.atttypid, NULL) AS type
         FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
        WHERE x.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND x.indisprimary AND x.indnkeyatts = 1
          AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype)`, [t.schema, t.name]);
        const key = pk.rows[0]?.key;
        const keyType = pk.rows[0]?.type;
        if (!key || !keyType)
            continue;
        const q = `${client.escapeIdentifier(t.schema)}.${client.escapeIdentifier(t.name)}`;
        const k = client.escapeIdentifier(key);
        const v = client.escapeIdentifier(c.name);
        const ids = [];
        for (const [order, offset] of [
            ['ASC', 0],
            ['DESC', 0],
            ['ASC', Math.min(Math.floor(t.rows / 2), 10_000)],
        ]) {
            const r = await client.query(`SELECT ${k}::text AS id FROM ONLY ${q} WHERE ${v} IS NOT NULL ORDER BY ${k} ${order} LIMIT 1 OFFSET ${offset}`);
            const id = r.rows[0]?.id;
            if (id !== undefined && !ids.includes(id))
                ids.push(id);
            if (ids.length >= KNN_SAMPLES)
                break;
        }
        const check = { schema: t.schema, table: t.name, column: c.name, key, keyType, operator: '<->', k: KNN_K, samples: ids.map((id) => ({ id, neighbours: [] })) };
        return runKnn(client, check);
    }
    return undefined;
}
/** Exact nearest-neighbour search (index scans off) for every sample of `check`, in the current transaction. */
async function runKnn(client, check) {
    const q = `${client.escapeIdentifier(check.schema)}.${client.escapeIdentifier(check.table)}`;
    const k = client.escapeIdentifier(check.key);
    const v = client.escapeIdentifier(check.column);
    // The check may come from a manifest on disk: only known operators and key types reach SQL.
    if (check.operator !== '<->')
        throw new errors/* BackupError */.hj(`The manifest's kNN check uses an unsupported operator`, 'Re-create the backup');
    if (!KEY_TYPES.has(check.keyType))
        throw new errors/* BackupError */.hj(`The manifest's kNN check uses an unsupported key type`, 'Re-create the backup');
    await client.query(`SELECT set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`);
    const samples = [];
    for (const s of check.samples) {
        const r = await client.query(`SELECT ${k}::text AS id FROM ONLY ${q} WHERE ${v} IS NOT NULL
        ORDER BY ${v} <-> (SELECT ${v} FROM ONLY ${q} WHERE ${k} = $1::${check.keyType}), ${k} LIMIT ${Number(check.k)}`, [s.id]);
        samples.push({ id: s.id, neighbours: r.rows.map((row) => row.id) });
    }
    await client.query(`SELECT set_config('enable_indexscan', 'on', true), set_config('enable_bitmapscan', 'on', true)`);
    return { ...check, samples };
}
function totals(inv) {
    let rows = 0;
    let vectors = 0;
    for (const t of inv.tables) {
        rows += t.rows;
        for (const c of t.vectorColumns)
            vectors += c.nonNull;
    }
    return { tables: inv.tables.length, rows, vectors };
}

// EXTERNAL MODULE: ./src/postgres/tools.ts
var postgres_tools = __nccwpck_require__(8880);
;// CONCATENATED MODULE: ./src/report/reporter.ts
class MemoryReporter {
    outputs = {};
    summaries = [];
    output(name, value) {
        this.outputs[name] = String(value);
    }
    async summary(markdown) {
        this.summaries.push(markdown);
    }
}
/** A markdown table; cells are escaped so names with | or newlines cannot break it. */
function table(header, rows) {
    const cell = (v) => String(v).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
    const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
    for (const r of rows)
        lines.push(`| ${r.map(cell).join(' | ')} |`);
    return lines.join('\n');
}

;// CONCATENATED MODULE: ./src/version.ts
// Kept equal to package.json's version by a test.
const VERSION = '0.1.0';

;// CONCATENATED MODULE: ./src/retention.ts
// Which backups to keep: a pure policy, table-tested. Only complete, good backups count towards what must be
// kept; the newest good backup is never deleted, whatever the settings.
const DAY_MS = 86_400_000;
function isoWeek(d) {
    const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
    const day = t.getUTCDay() || 7;
    t.setUTCDate(t.getUTCDate() + 4 - day);
    const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
    const week = Math.ceil(((t.getTime() - yearStart) / DAY_MS + 1) / 7);
    return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
const BUCKETS = [
    ['daily', 'daily', (d) => d.toISOString().slice(0, 10)],
    ['weekly', 'weekly', isoWeek],
    ['monthly', 'monthly', (d) => d.toISOString().slice(0, 7)],
    ['yearly', 'yearly', (d) => d.toISOString().slice(0, 4)],
];
/**
 * Decides for each backup whether to keep it, and why. Orders by createdAt (UTC), never by name.
 * Grandfather-father-son buckets follow restic's meaning: the newest backup of each of the last N periods that
 * have a backup.
 */
function planRetention(backups, policy, now) {
    const sorted = [...backups].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    const decisions = new Map(sorted.map((b) => [b, []]));
    const good = sorted.filter((b) => b.good);
    good.slice(0, Math.max(1, policy.keepMin)).forEach((b, i) => decisions.get(b).push(i === 0 ? 'newest good backup' : `keep-min ${policy.keepMin}`));
    for (const [key, label, bucketOf] of BUCKETS) {
        const n = policy[key];
        if (n <= 0)
            continue;
        const seen = new Set();
        for (const b of good) {
            const bucket = bucketOf(b.createdAt);
            if (seen.has(bucket))
                continue;
            seen.add(bucket);
            if (seen.size > n)
                break;
            decisions.get(b).push(`${label} ${bucket}`);
        }
    }
    if (policy.days > 0) {
        for (const b of sorted) {
            if (now.getTime() - b.createdAt.getTime() < policy.days * DAY_MS)
                decisions.get(b).push(`younger than ${policy.days} days`);
        }
    }
    else {
        for (const b of sorted)
            decisions.get(b).push('retention-days 0 keeps all');
    }
    return sorted.map((b) => {
        const reasons = decisions.get(b);
        return { name: b.name, createdAt: b.createdAt, keep: reasons.length > 0, reasons };
    });
}

;// CONCATENATED MODULE: ./src/storage/local.ts
// The local backup directory: listing complete backups (a manifest and its archive), finding one by
// latest | name | path, and deleting. An archive without a manifest is not a backup and is never listed.




function isGood(m) {
    return m.verification === null || m.verification.ok;
}
/** Lists the backups in `dir`, optionally only those of `database`, newest first (by the manifest's time). */
async function scanLocal(dir, database) {
    const result = { backups: [], invalid: [], partials: [] };
    let entries;
    try {
        entries = await external_node_fs_.promises.readdir(dir);
    }
    catch (err) {
        if (err.code === 'ENOENT')
            return result;
        throw new errors/* BackupError */.hj(`Cannot read backup-dir ${dir}: ${err.message}`, 'Check backup-dir and its permissions', { cause: err });
    }
    const prefix = database === undefined ? undefined : namePrefix(database);
    for (const e of entries.sort()) {
        const full = external_node_path_default().join(dir, e);
        if (e.endsWith('.partial')) {
            if (prefix && !e.startsWith(prefix))
                continue;
            const st = await external_node_fs_.promises.stat(full).catch(() => undefined);
            if (st)
                result.partials.push({ path: full, mtime: st.mtime });
            continue;
        }
        if (!e.endsWith('.json'))
            continue;
        let manifest;
        try {
            manifest = await readManifest(full);
        }
        catch (err) {
            if (!prefix || e.startsWith(prefix))
                result.invalid.push({ path: full, reason: err.message });
            continue;
        }
        if (database !== undefined && manifest.database !== database)
            continue;
        const archivePath = external_node_path_default().join(dir, manifest.archive.file);
        const st = await external_node_fs_.promises.stat(archivePath).catch(() => undefined);
        if (!st) {
            result.invalid.push({ path: full, reason: `archive ${manifest.archive.file} is missing` });
            continue;
        }
        result.backups.push({
            name: manifest.name,
            manifestPath: full,
            archivePath,
            manifest,
            createdAt: new Date(manifest.createdAt),
            good: isGood(manifest),
        });
    }
    result.backups.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    return result;
}
const SUFFIXES = ['.sql.gz', '.sql.zst', '.dump.zst', '.dump.gz', '.sql', '.dump', '.dir', '.json'];
/** The backup a `backup` input names: latest, a backup name, or a path to its archive or manifest. */
async function resolveLocal(ref, dir, database) {
    if (ref === 'latest') {
        const scan = await scanLocal(dir, database);
        const latest = scan.backups.find((b) => b.good);
        if (!latest) {
            const what = database ? ` of database ${database}` : '';
            throw new errors/* BackupError */.hj(`No complete backup${what} found in ${dir}`, 'Run a backup first, or set backup-dir (or backup) to where the backups are');
        }
        return latest;
    }
    if (/[\0\n\r]/.test(ref))
        throw new errors/* ConfigurationError */.j1('Input backup must not contain newlines or NUL characters');
    const looksLikePath = ref.includes('/') || ref.includes((external_node_path_default()).sep);
    let manifestPath;
    if (looksLikePath) {
        const abs = external_node_path_default().resolve(ref);
        const base = external_node_path_default().basename(abs);
        const suffix = SUFFIXES.find((s) => base.endsWith(s));
        const stem = suffix ? base.slice(0, -suffix.length) : base;
        manifestPath = manifestPathFor(external_node_path_default().dirname(abs), stem);
    }
    else {
        if (ref.includes('..'))
            throw new errors/* ConfigurationError */.j1(`Input backup "${ref}" is not a valid backup name`);
        const suffix = SUFFIXES.find((s) => ref.endsWith(s));
        manifestPath = manifestPathFor(dir, suffix ? ref.slice(0, -suffix.length) : ref);
    }
    const manifest = await readManifest(manifestPath);
    const archivePath = external_node_path_default().join(external_node_path_default().dirname(manifestPath), manifest.archive.file);
    return {
        name: manifest.name,
        manifestPath,
        archivePath,
        manifest,
        createdAt: new Date(manifest.createdAt),
        good: isGood(manifest),
    };
}
/** Deletes a backup: manifest first, so an interrupted delete never leaves a manifest without its archive. */
async function deleteLocal(b) {
    await external_node_fs_.promises.rm(b.manifestPath, { force: true });
    await external_node_fs_.promises.rm(b.archivePath, { force: true, recursive: true });
}

;// CONCATENATED MODULE: ./src/modes/prune.ts
// Retention: after a successful backup, and as mode: prune (a dry run unless dry-run: false). Only this
// database's complete backups count; the newest good one is never deleted; leftovers of interrupted runs
// (.partial) are removed after a day; an archive without a manifest is never touched.




const PARTIAL_GRACE_MS = 86_400_000;
async function applyRetention(ctx, database, opts) {
    const { config, logger } = ctx;
    const now = new Date();
    const scan = await scanLocal(config.backupDir, database);
    const plan = planRetention(scan.backups, config.retention, now);
    const byName = new Map(scan.backups.map((b) => [b.name, b]));
    const verb = opts.dryRun ? 'would delete' : 'deleted';
    let deleted = 0;
    for (const d of plan) {
        if (d.keep) {
            logger.debug(`keep ${d.name}: ${d.reasons.join(', ')}`);
            continue;
        }
        if (!opts.dryRun)
            await deleteLocal(byName.get(d.name));
        deleted++;
        logger.info(`  ${verb} ${d.name} (created ${d.createdAt.toISOString()})`);
    }
    for (const p of scan.partials) {
        if (now.getTime() - p.mtime.getTime() < PARTIAL_GRACE_MS)
            continue;
        if (!opts.dryRun)
            await external_node_fs_.promises.rm(p.path, { recursive: true, force: true });
        logger.info(`  ${verb} leftover ${p.path}`);
    }
    logger.info(`Retention (${config.retention.days} days, keep-min ${config.retention.keepMin}): ${plan.length - deleted} kept, ${deleted} ${verb}`);
    return plan;
}
async function runPrune(ctx) {
    const { config, reporter } = ctx;
    const database = config.databaseNamed ? config.source.database : undefined;
    const plan = await applyRetention(ctx, database, { dryRun: config.dryRun });
    await reporter.summary([
        `## pgvector-backup: prune${config.dryRun ? ' (dry run: nothing deleted; set dry-run: false to delete)' : ''}`,
        '',
        table(['Backup', 'Created (UTC)', 'Decision', 'Why kept'], plan.map((d) => [d.name, d.createdAt.toISOString(), d.keep ? 'keep' : config.dryRun ? 'would delete' : 'deleted', d.reasons.join(', ')])),
        '',
    ].join('\n'));
    return plan;
}

;// CONCATENATED MODULE: ./src/archive/verify.ts
// Quick verification, cheapest first: the manifest matches the file (size, sha256 of every stored byte), the
// whole stream decompresses to the size pg_dump wrote, and the structure is complete (pg_restore --list has
// TABLE DATA for every table and the extensions; a plain dump has its header, its completion footer and a COPY
// for every table). One read of the archive does the hashing, decompression and plain-text checks.








const PLAIN_HEADER = '-- PostgreSQL database dump';
const PLAIN_FOOTER = '-- PostgreSQL database dump complete';
const LINE_PREFIX = 4096;
/** Scans decompressed plain SQL for its header, footer, COPY targets and matview refreshes, in bounded memory. */
class PlainScanner extends external_node_stream_namespaceObject.Writable {
    head = '';
    tail = '';
    copies = new Set();
    refreshes = new Set();
    // The start of the current line, as bytes: decoding per chunk would split multi-byte characters.
    pending = [];
    pendingBytes = 0;
    _write(chunk, _enc, cb) {
        if (this.head.length < 256)
            this.head += chunk.subarray(0, 256).toString('utf8');
        this.tail = (this.tail + chunk.subarray(Math.max(0, chunk.length - 512)).toString('latin1')).slice(-512);
        let pos = 0;
        while (pos < chunk.length) {
            const nl = chunk.indexOf(10, pos);
            const end = nl === -1 ? chunk.length : nl;
            // Only the first bytes of a line matter (COPY / REFRESH statements); data lines can be huge.
            const take = Math.min(LINE_PREFIX - this.pendingBytes, end - pos);
            if (take > 0) {
                this.pending.push(chunk.subarray(pos, pos + take));
                this.pendingBytes += take;
            }
            if (nl === -1)
                break;
            this.flushLine();
            pos = nl + 1;
        }
        cb();
    }
    _final(cb) {
        if (this.pendingBytes)
            this.flushLine();
        cb();
    }
    flushLine() {
        this.line(Buffer.concat(this.pending).toString('utf8'));
        this.pending = [];
        this.pendingBytes = 0;
    }
    line(l) {
        if (l.startsWith('COPY ')) {
            const m = /^COPY (.+?) (\(|FROM )/.exec(l);
            if (m)
                this.copies.add(normalizeQualified(m[1]));
        }
        else if (l.startsWith('REFRESH MATERIALIZED VIEW ')) {
            this.refreshes.add(normalizeQualified(l.slice('REFRESH MATERIALIZED VIEW '.length).replace(/;\s*$/, '')));
        }
    }
}
/** `public."My Table"` -> `public.My Table` (for comparison with the manifest's names). */
function normalizeQualified(s) {
    const parts = [];
    let i = 0;
    while (i < s.length) {
        if (s[i] === '"') {
            let j = i + 1;
            let out = '';
            while (j < s.length) {
                if (s[j] === '"' && s[j + 1] === '"') {
                    out += '"';
                    j += 2;
                }
                else if (s[j] === '"')
                    break;
                else
                    out += s[j++];
            }
            parts.push(out);
            i = j + 1;
        }
        else {
            const dot = s.indexOf('.', i);
            const end = dot === -1 ? s.length : dot;
            parts.push(s.slice(i, end));
            i = end;
        }
        if (s[i] === '.')
            i++;
    }
    return parts.join('.');
}
function fail(name, check, hint = 'The backup is damaged or incomplete; use another backup and run a new one') {
    throw new errors/* BackupError */.hj(`Backup ${name} failed the ${check} check`, hint);
}
/** Runs every quick check; throws a BackupError naming the backup and the failed check. */
async function quickVerify(manifest, archivePath, tools) {
    const name = manifest.name;
    const checks = [];
    const st = await external_node_fs_.promises.stat(archivePath).catch(() => undefined);
    if (!st)
        fail(name, `archive exists (${external_node_path_default().basename(archivePath)} is missing)`);
    if (manifest.format === 'directory') {
        if (!st.isDirectory())
            fail(name, 'archive is a directory');
        const h = await hashDirectory(archivePath);
        const expected = new Map((manifest.archive.files ?? []).map((f) => [f.path, f]));
        for (const f of h.files) {
            const e = expected.get(f.path);
            if (!e)
                fail(name, `file list (unexpected file ${f.path})`);
            if (e.size !== f.size || e.sha256 !== f.sha256)
                fail(name, `sha256 of ${f.path}`);
            expected.delete(f.path);
        }
        if (expected.size)
            fail(name, `file list (missing ${[...expected.keys()].join(', ')})`);
        if (h.size !== manifest.archive.size)
            fail(name, `size (${h.size} bytes, manifest says ${manifest.archive.size})`);
        if (h.sha256 !== manifest.archive.sha256)
            fail(name, 'sha256');
        checks.push(`size ${formatBytes(h.size)} and sha256 of ${h.files.length} files match the manifest`);
    }
    else {
        if (!st.isFile())
            fail(name, 'archive is a file');
        if (st.size !== manifest.archive.size)
            fail(name, `size (${st.size} bytes, manifest says ${manifest.archive.size})`);
        const stored = new Meter(true);
        const stages = [(0,external_node_fs_.createReadStream)(archivePath, { highWaterMark: 1 << 20 }), stored];
        const dec = manifest.compression.applied === 'stream' ? decompressor(manifest.compression.method) : undefined;
        const plain = new Meter(false);
        if (dec)
            stages.push(dec);
        stages.push(plain);
        const scanner = manifest.format === 'plain' ? new PlainScanner() : undefined;
        const magic = new external_node_stream_namespaceObject.PassThrough();
        let first = Buffer.alloc(0);
        if (scanner)
            stages.push(scanner);
        else {
            magic.on('data', (d) => {
                if (first.length < 5)
                    first = Buffer.concat([first, d.subarray(0, 5)]);
            });
            stages.push(magic, new external_node_stream_namespaceObject.Writable({ write: (_c, _e, cb) => cb() }));
        }
        try {
            await (0,promises_namespaceObject.pipeline)(...stages);
        }
        catch (err) {
            fail(name, `decompression (${err.message})`);
        }
        if (stored.digest() !== manifest.archive.sha256)
            fail(name, 'sha256 (the archive differs from what was written)');
        checks.push(`size ${formatBytes(st.size)} and sha256 match the manifest`);
        if (dec) {
            if (plain.bytes !== manifest.archive.dumpBytes)
                fail(name, `decompression (${plain.bytes} bytes, pg_dump wrote ${manifest.archive.dumpBytes})`);
            checks.push(`decompresses to ${formatBytes(plain.bytes)}, the size pg_dump wrote`);
        }
        if (scanner) {
            if (!scanner.head.startsWith('--\n' + PLAIN_HEADER) && !scanner.head.includes(PLAIN_HEADER))
                fail(name, 'plain dump header');
            if (!scanner.tail.includes(PLAIN_FOOTER))
                fail(name, 'plain dump footer (the dump is truncated)');
            const missing = manifest.tables
                .filter((t) => t.hasData && t.kind !== 'materialized view')
                .filter((t) => !scanner.copies.has(`${t.schema}.${t.name}`))
                .map((t) => `${t.schema}.${t.name}`);
            const missingMv = manifest.tables.filter((t) => t.hasData && t.kind === 'materialized view' && !scanner.refreshes.has(`${t.schema}.${t.name}`));
            if (missing.length || missingMv.length)
                fail(name, `structure (no data for ${[...missing, ...missingMv.map((t) => `${t.schema}.${t.name}`)].slice(0, 5).join(', ')})`);
            checks.push(`plain dump header and completion footer present; COPY for all ${manifest.tables.filter((t) => t.hasData).length} tables with data`);
        }
        else if (first.subarray(0, 5).toString('latin1') !== 'PGDMP') {
            fail(name, 'archive header (not a pg_dump custom archive)');
        }
    }
    if (manifest.format !== 'plain') {
        if (!tools)
            throw new Error('pg_restore is needed for the structure check');
        const toc = await restoreList(manifest, archivePath, tools);
        const missing = [];
        for (const t of manifest.tables) {
            if (!t.hasData)
                continue;
            const entry = t.kind === 'materialized view' ? 'MATERIALIZED VIEW DATA' : 'TABLE DATA';
            if (!tocHas(toc, entry, t.schema, t.name))
                missing.push(`${t.schema}.${t.name}`);
        }
        for (const e of manifest.extensions) {
            if (e.name === 'plpgsql')
                continue;
            if (!new RegExp(`\\bEXTENSION - ${escapeRe(e.name)}\\b`).test(toc))
                missing.push(`extension ${e.name}`);
        }
        if (missing.length)
            fail(name, `structure (pg_restore --list lacks ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' ...' : ''})`);
        checks.push(`pg_restore --list: data for all ${manifest.tables.filter((t) => t.hasData).length} tables, ${manifest.extensions.filter((e) => e.name !== 'plpgsql').length} extensions`);
    }
    return { checks };
}
function escapeRe(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
function tocHas(toc, entry, schema, name) {
    return toc.split('\n').some((l) => {
        const i = l.indexOf(` ${entry} ${schema} ${name} `);
        return i > 0 && l.slice(0, i).includes(';');
    });
}
/** pg_restore --list of the archive (decompressing a stream-compressed one into pg_restore's stdin). */
async function restoreList(manifest, archivePath, tools) {
    const streamed = manifest.compression.applied === 'stream';
    const args = ['--list', `--format=${manifest.format}`];
    if (!streamed)
        args.push(archivePath);
    const cmd = (0,postgres_tools/* toolCommand */.WQ)(tools, 'pg_restore', args, process.env, streamed ? [] : [external_node_path_default().dirname(archivePath)]);
    const child = (0,exec/* spawnCommand */.nj)(cmd, [streamed ? 'pipe' : 'ignore', 'pipe', 'pipe']);
    let out = '';
    const err = new exec/* Tail */.PW();
    child.stdout.on('data', (d) => (out += d.toString()));
    child.stderr.on('data', (d) => err.push(d));
    const exited = (0,exec/* waitForExit */.zE)(child);
    if (streamed) {
        const dec = decompressor(manifest.compression.method);
        // pg_restore --list stops reading after the table of contents: a closed pipe then is expected.
        child.stdin.on('error', () => undefined);
        await (0,promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(archivePath), dec, child.stdin).catch(() => undefined);
    }
    const { code, signal } = await exited;
    if (code !== 0) {
        throw new errors/* BackupError */.hj(`Backup ${manifest.name} failed the structure check: ${(0,exec/* describeExit */.KE)('pg_restore --list', code, signal)}: ${(0,exec/* lastLines */.w$)(err.toString())}`, 'The archive is damaged; use another backup and run a new one');
    }
    return out;
}

;// CONCATENATED MODULE: ./src/modes/verify.ts
// mode: verify. Quick checks of one backup (latest, a name or a path) or of all of them (the old
// verify_backup.sh --all); each result is recorded in the backup's manifest and reported.








const toolCache = new Map();
async function restoreTools(ctx, major) {
    const cached = toolCache.get(major);
    if (cached)
        return cached;
    const t = await (0,postgres_tools/* findClientTools */.Mt)(major, { env: ctx.config.env, logger: ctx.logger, ...(ctx.config.pgBinDir ? { pgBinDir: ctx.config.pgBinDir } : {}) });
    toolCache.set(major, t);
    return t;
}
/** Quick-verifies one backup, logs each check, records the result in its manifest. */
async function verifyOne(ctx, b) {
    const { logger } = ctx;
    return logger.group(`Verify ${b.name} (checksum, decompression, structure)`, async () => {
        let outcome;
        try {
            const tools = b.manifest.format === 'plain' ? undefined : await restoreTools(ctx, b.manifest.pgDump.major);
            const r = await quickVerify(b.manifest, b.archivePath, tools);
            for (const c of r.checks)
                logger.info(`  ok: ${c}`);
            outcome = { name: b.name, ok: true, checks: r.checks };
        }
        catch (err) {
            if (!(err instanceof errors/* BackupError */.hj))
                throw err;
            logger.error((0,errors/* describeError */.Uc)(err));
            outcome = { name: b.name, ok: false, checks: [], failure: (0,errors/* describeError */.Uc)(err) };
        }
        await recordVerification(ctx, b, {
            level: 'quick',
            ok: outcome.ok,
            at: new Date().toISOString(),
            checks: outcome.checks,
            ...(outcome.failure ? { failure: outcome.failure } : {}),
        });
        return outcome;
    });
}
/** Stores a verification result in the manifest (atomically). A read-only backup-dir only earns a warning. */
async function recordVerification(ctx, b, v) {
    // A full verification is not overwritten by a later quick one that passed.
    const prev = b.manifest.verification;
    if (prev && prev.level === 'full' && prev.ok && v.level === 'quick' && v.ok)
        return;
    b.manifest.verification = v;
    b.good = v.ok;
    try {
        await writeManifest(external_node_path_default().dirname(b.manifestPath), b.manifest);
    }
    catch (err) {
        ctx.logger.warning(`Could not record the verification in ${b.manifestPath}: ${err.message}`);
    }
}
async function runVerify(ctx) {
    const { config, reporter } = ctx;
    const database = config.databaseNamed ? config.source.database : undefined;
    let targets;
    if (config.all) {
        const scan = await scanLocal(config.backupDir, database);
        targets = scan.backups;
        for (const inv of scan.invalid)
            ctx.logger.error(`${inv.path}: ${inv.reason}`);
        if (!targets.length && !scan.invalid.length)
            throw new errors/* BackupError */.hj(`No backups found in ${config.backupDir}`, 'Set backup-dir to where the backups are');
        const outcomes = [];
        for (const b of targets)
            outcomes.push(await verifyOne(ctx, b));
        const failed = outcomes.filter((o) => !o.ok).length + scan.invalid.length;
        await reporter.summary([
            `## pgvector-backup: verify ${outcomes.length + scan.invalid.length} backups`,
            '',
            table(['Backup', 'Result'], [
                ...outcomes.map((o) => [o.name, o.ok ? 'ok' : `FAILED: ${o.failure}`]),
                ...scan.invalid.map((i) => [i.path, `FAILED: ${i.reason}`]),
            ]),
            '',
        ].join('\n'));
        reporter.output('verified', failed === 0);
        if (failed)
            throw new errors/* BackupError */.hj(`${failed} of ${outcomes.length + scan.invalid.length} backups failed verification`, 'See the failed checks above; do not rely on those backups');
        return outcomes;
    }
    const b = await resolveLocal(config.backup, config.backupDir, database);
    setBackupOutputs(ctx, b);
    const outcome = await verifyOne(ctx, b);
    const ok = outcome.ok;
    await reporter.summary([
        `## pgvector-backup: verify ${b.name}`,
        '',
        outcome.ok ? outcome.checks.map((c) => `- ok: ${c}`).join('\n') : `- **FAILED**: ${outcome.failure}`,
        '',
    ].join('\n'));
    reporter.output('verified', ok);
    // The failure already names the backup, the check and what to do.
    if (!ok)
        throw new errors/* BackupError */.hj(outcome.failure ?? `Backup ${b.name} failed verification`);
    return [outcome];
}

;// CONCATENATED MODULE: ./src/archive/compare.ts
/** "0.8.0" vs "0.7.4": numeric, part by part; non-numeric parts compare as text. */
function compareVersions(a, b) {
    const pa = a.split(/[.-]/);
    const pb = b.split(/[.-]/);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        const x = pa[i] ?? '0';
        const y = pb[i] ?? '0';
        const nx = Number(x);
        const ny = Number(y);
        if (Number.isFinite(nx) && Number.isFinite(ny)) {
            if (nx !== ny)
                return nx < ny ? -1 : 1;
        }
        else if (x !== y)
            return x < y ? -1 : 1;
    }
    return 0;
}
function compareInventory(expected, actual) {
    const mismatches = [];
    const key = (s, n) => `${s}.${n}`;
    const actualTables = new Map(actual.tables.map((t) => [key(t.schema, t.name), t]));
    const actualIndexes = new Map(actual.indexes.map((i) => [key(i.schema, i.name), i]));
    const reports = [];
    for (const t of expected.tables) {
        const name = key(t.schema, t.name);
        const got = actualTables.get(name);
        const before = mismatches.length;
        const tableIndexes = expected.indexes.filter((i) => i.schema === t.schema && i.table === t.name);
        if (!got) {
            mismatches.push({ kind: 'table', object: name, expected: 'present', actual: 'missing' });
        }
        else {
            if (got.rows !== t.rows)
                mismatches.push({ kind: 'rows', object: name, expected: String(t.rows), actual: String(got.rows) });
            for (const c of t.vectorColumns) {
                const gc = got.vectorColumns.find((x) => x.name === c.name);
                const obj = `${name}.${c.name}`;
                if (!gc)
                    mismatches.push({ kind: 'vector column', object: obj, expected: `${c.type}(${c.dimensions ?? ''})`, actual: 'missing' });
                else {
                    if (gc.type !== c.type || gc.dimensions !== c.dimensions) {
                        mismatches.push({ kind: 'vector column', object: obj, expected: `${c.type}(${c.dimensions ?? ''})`, actual: `${gc.type}(${gc.dimensions ?? ''})` });
                    }
                    if (gc.nonNull !== c.nonNull)
                        mismatches.push({ kind: 'vector column', object: obj, expected: `${c.nonNull} non-null`, actual: `${gc.nonNull} non-null` });
                }
            }
        }
        for (const i of tableIndexes) {
            const gi = actualIndexes.get(key(i.schema, i.name));
            const obj = key(i.schema, i.name);
            if (!gi)
                mismatches.push({ kind: 'index', object: obj, expected: i.definition, actual: 'missing' });
            else {
                if (gi.definition !== i.definition)
                    mismatches.push({ kind: 'index', object: obj, expected: i.definition, actual: gi.definition });
                if (!gi.valid)
                    mismatches.push({ kind: 'index', object: obj, expected: 'valid', actual: 'invalid (indisvalid = false)' });
            }
        }
        const validIdx = tableIndexes.filter((i) => actualIndexes.get(key(i.schema, i.name))?.valid).length;
        reports.push({
            table: name,
            expectedRows: t.rows,
            restoredRows: got ? got.rows : null,
            vectors: t.vectorColumns.map((c) => `${c.name}: ${got?.vectorColumns.find((x) => x.name === c.name)?.nonNull ?? 'missing'}/${c.nonNull}`).join(', ') || '-',
            indexes: tableIndexes.length ? `${validIdx}/${tableIndexes.length}` : '-',
            ok: mismatches.length === before,
        });
    }
    const actualSeq = new Map(actual.sequences.map((s) => [key(s.schema, s.name), s]));
    for (const s of expected.sequences) {
        const name = key(s.schema, s.name);
        const got = actualSeq.get(name);
        if (!got) {
            mismatches.push({ kind: 'sequence', object: name, expected: 'present', actual: 'missing' });
            continue;
        }
        // pg_dump reads a sequence after the snapshot's inventory did, and sequences are not transactional:
        // the restored value may be higher than recorded, never lower.
        if (s.lastValue !== null && (got.lastValue === null || BigInt(got.lastValue) < BigInt(s.lastValue))) {
            mismatches.push({ kind: 'sequence', object: name, expected: `last_value >= ${s.lastValue}`, actual: String(got.lastValue) });
        }
    }
    const actualExt = new Map(actual.extensions.map((e) => [e.name, e]));
    for (const e of expected.extensions) {
        const got = actualExt.get(e.name);
        if (!got)
            mismatches.push({ kind: 'extension', object: e.name, expected: e.version, actual: 'missing' });
        else if (compareVersions(got.version, e.version) < 0)
            mismatches.push({ kind: 'extension', object: e.name, expected: `>= ${e.version}`, actual: got.version });
    }
    if (expected.largeObjects !== actual.largeObjects) {
        mismatches.push({ kind: 'large objects', object: 'pg_largeobject_metadata', expected: String(expected.largeObjects), actual: String(actual.largeObjects) });
    }
    let knn = null;
    if (expected.knn) {
        const before = mismatches.length;
        compareKnn(expected.knn, actual.knn, mismatches);
        knn = { table: key(expected.knn.schema, expected.knn.table), samples: expected.knn.samples.length, k: expected.knn.k, ok: mismatches.length === before };
    }
    return { mismatches, tables: reports, knn };
}
function compareKnn(expected, actual, out) {
    const obj = `${expected.schema}.${expected.table}.${expected.column}`;
    if (!actual) {
        out.push({ kind: 'knn', object: obj, expected: `${expected.samples.length} samples`, actual: 'not run' });
        return;
    }
    for (const s of expected.samples) {
        const got = actual.samples.find((x) => x.id === s.id);
        const exp = s.neighbours.join(',');
        const act = got ? got.neighbours.join(',') : 'missing';
        if (exp !== act)
            out.push({ kind: 'knn', object: `${obj} nearest ${expected.k} of ${expected.key}=${s.id}`, expected: exp, actual: act });
    }
}
function describeMismatch(m) {
    return `${m.kind} ${m.object}: expected ${m.expected}, restored ${m.actual}`;
}

// EXTERNAL MODULE: ./src/postgres/cluster.ts + 1 modules
var postgres_cluster = __nccwpck_require__(4259);
;// CONCATENATED MODULE: ./src/postgres/restore.ts
// Restoring an archive into an empty database: pre-data, data, post-data as separate pg_restore runs (so the
// extension exists before any vector column, and the index phase is timed on its own), stopping at the first
// error; plain SQL through psql with ON_ERROR_STOP. Decompressed temp files are always removed.











/** Session settings for restore connections: memory and workers for index builds (HNSW is the slow part). */
function restoreSessionOptions(cpus = external_node_os_default().availableParallelism()) {
    return `-c maintenance_work_mem=${(0,postgres_cluster/* maintenanceWorkMem */.QS)()} -c max_parallel_maintenance_workers=${Math.max(0, Math.min(cpus - 1, 8))} -c statement_timeout=0 -c lock_timeout=0`;
}
/** Creates the roles the dump references that the target lacks (NOLOGIN); returns the names created. */
async function createMissingRoles(conn, roles) {
    if (!roles.length)
        return [];
    const client = await (0,connection/* connect */.Ng)(conn);
    const created = [];
    try {
        const existing = await client.query(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, [roles]);
        const have = new Set(existing.rows.map((r) => r.rolname));
        for (const r of roles) {
            if (have.has(r) || r.startsWith('pg_'))
                continue;
            await client.query(`CREATE ROLE ${client.escapeIdentifier(r)} NOLOGIN`);
            created.push(r);
        }
    }
    finally {
        await client.end().catch(() => undefined);
    }
    return created;
}
async function restoreArchive(manifest, archivePath, target, opts) {
    const env = (0,connection/* libpqEnv */.kY)(target.conn, opts.env, restoreSessionOptions());
    env.PGAPPNAME = 'pgvector-backup restore';
    const warnings = [];
    const started = Date.now();
    const { logger } = opts;
    if (manifest.format === 'plain') {
        await withProgress(logger, opts.progressSeconds, (s) => `  psql: restoring, ${s.toFixed(0)} s`, psqlFromStream(manifest, archivePath, target.tools, env, target.conn.database, warnings));
        return { restoreSeconds: secondsSince(started), indexBuildSeconds: null, warnings };
    }
    let input = archivePath;
    let tmpDir;
    const unregister = opts.onCancel?.(async () => {
        if (tmpDir)
            await external_node_fs_.promises.rm(tmpDir, { recursive: true, force: true });
    });
    try {
        if (manifest.compression.applied === 'stream') {
            // pg_restore needs a seekable file for sections and parallel jobs: decompress to a private temp file.
            tmpDir = await external_node_fs_.promises.mkdtemp(external_node_path_default().join(external_node_os_default().tmpdir(), 'pgvb-restore-'));
            input = external_node_path_default().join(tmpDir, 'archive.dump');
            await (0,promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(archivePath), decompressor(manifest.compression.method), (0,external_node_fs_.createWriteStream)(input, { mode: 0o600 }));
            if (target.tools.kind === 'docker')
                await external_node_fs_.promises.chmod(tmpDir, 0o755);
        }
        let indexBuildSeconds = 0;
        for (const section of ['pre-data', 'data', 'post-data']) {
            const t0 = Date.now();
            const args = pgRestoreArgs({
                format: manifest.format,
                database: target.conn.database,
                input,
                section,
                jobs: opts.jobs,
                noOwner: opts.noOwner,
            });
            const cmd = (0,postgres_tools/* toolCommand */.WQ)(target.tools, 'pg_restore', args, env, [external_node_path_default().dirname(input)]);
            const res = await withProgress(logger, opts.progressSeconds, (s) => `  pg_restore ${section}: ${s.toFixed(0)} s`, (0,exec/* run */.eF)(cmd));
            collectWarnings(res.stderr, warnings);
            if (res.code !== 0 || res.signal) {
                throw new errors/* BackupError */.hj(`The test restore failed in ${section}: ${(0,exec/* describeExit */.KE)('pg_restore', res.code, res.signal)}: ${(0,exec/* lastLines */.w$)(res.stderr)}`, restoreHint(res.stderr));
            }
            const secs = secondsSince(t0);
            logger.info(`  ${section}: ${secs.toFixed(1)} s`);
            if (section === 'post-data')
                indexBuildSeconds = secs;
        }
        return { restoreSeconds: secondsSince(started), indexBuildSeconds, warnings };
    }
    finally {
        unregister?.();
        if (tmpDir)
            await external_node_fs_.promises.rm(tmpDir, { recursive: true, force: true });
    }
}
async function psqlFromStream(manifest, archivePath, tools, env, database, warnings) {
    const cmd = (0,postgres_tools/* toolCommand */.WQ)(tools, 'psql', psqlRestoreArgs({ database }), env);
    const child = (0,exec/* spawnCommand */.nj)(cmd, ['pipe', 'ignore', 'pipe']);
    const stderr = new exec/* Tail */.PW();
    child.stderr.on('data', (d) => stderr.push(d));
    const exited = (0,exec/* waitForExit */.zE)(child);
    child.stdin.on('error', () => undefined);
    const stages = [(0,external_node_fs_.createReadStream)(archivePath, { highWaterMark: 1 << 20 })];
    const dec = manifest.compression.applied === 'stream' ? decompressor(manifest.compression.method) : undefined;
    if (dec)
        stages.push(dec);
    stages.push(child.stdin);
    let pipeErr;
    await (0,promises_namespaceObject.pipeline)(...stages).catch((err) => {
        pipeErr = err;
    });
    const { code, signal } = await exited;
    collectWarnings(stderr.toString(), warnings);
    if (code !== 0 || signal) {
        throw new errors/* BackupError */.hj(`The test restore failed: ${(0,exec/* describeExit */.KE)('psql', code, signal)}: ${(0,exec/* lastLines */.w$)(stderr.toString())}`, restoreHint(stderr.toString()));
    }
    if (pipeErr)
        throw new errors/* BackupError */.hj(`Reading the archive failed during the restore: ${pipeErr.message}`, 'The archive is damaged; run verify');
}
function collectWarnings(stderr, out) {
    for (const line of stderr.split('\n')) {
        if (/hnsw graph no longer fits into maintenance_work_mem|ivfflat index created with little data/i.test(line))
            out.push(line.replace(/^.*?(NOTICE|WARNING):\s*/, '').trim());
    }
}
function restoreHint(stderr) {
    if (/extension "?vector"? is not available|could not open extension control file/i.test(stderr))
        return 'The target lacks pgvector: use a pgvector/pgvector image or install pgvector there';
    if (/role .* does not exist/i.test(stderr))
        return 'The dump references roles the target lacks: set create-roles: true';
    if (/out of memory|could not resize shared memory/i.test(stderr))
        return 'The target ran out of memory building indexes: lower maintenance_work_mem or give it more memory';
    if (/no space left/i.test(stderr))
        return 'The target ran out of disk space';
    return 'The archive does not restore cleanly; see the error above';
}
function secondsSince(t0) {
    return Math.round((Date.now() - t0) / 10) / 100;
}

;// CONCATENATED MODULE: ./src/postgres/targets.ts
// Where a test restore goes, in order: test-restore-url (a temporary database there), a throwaway local
// cluster from PostgreSQL binaries that can provide every extension, a pgvector Docker container. Never the
// source server unless test-restore-url points there. Each target knows how to remove itself.







function tempDatabaseName(now = new Date()) {
    const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
    return `pgvb_test_${stamp}_${(0,external_node_crypto_namespaceObject.randomBytes)(3).toString('hex')}`;
}
const manifestMajor = (m) => (0,postgres_tools/* serverMajor */.jk)(m.server.versionNum);
/** Extensions the target must provide (plpgsql is always there). */
function neededExtensions(m) {
    return m.extensions.filter((e) => e.name !== 'plpgsql');
}
async function acquireTarget(manifest, opts) {
    if (opts.testRestoreUrl)
        return urlTarget(manifest, opts);
    const reasons = [];
    const local = await localTarget(manifest, opts, reasons);
    if (local)
        return local;
    if (await (0,postgres_tools/* dockerAvailable */.g$)(opts.env))
        return dockerTarget(manifest, opts);
    reasons.push('Docker is not available');
    const exts = neededExtensions(manifest).map((e) => e.name).join(', ') || 'none';
    throw new errors/* BackupError */.hj(`No test-restore target can provide PostgreSQL ${manifestMajor(manifest)}+ with the extensions ${exts} (${reasons.join('; ')})`, `Fix one of: (1) set test-restore-url to a server with those extensions, e.g. a ${(0,postgres_tools/* pgvectorImage */.o5)(manifestMajor(manifest))} service container; ` +
        `(2) install the PostgreSQL server and pgvector on this machine (apt-get install postgresql-${manifestMajor(manifest)}-pgvector); (3) make Docker available. Or set verify: quick to skip the test restore`);
}
/** Checks that a server can provide every extension the manifest lists, at the same or a newer version. */
async function checkExtensions(conn, manifest, where) {
    const client = await (0,connection/* connect */.Ng)(conn);
    try {
        const r = await client.query(`SELECT name, array_agg(version ORDER BY version) AS versions FROM pg_available_extension_versions GROUP BY name`);
        const available = new Map(r.rows.map((x) => [x.name, x.versions]));
        for (const e of neededExtensions(manifest)) {
            const versions = available.get(e.name);
            if (!versions) {
                throw new errors/* BackupError */.hj(`The test-restore target ${where} does not have the ${e.name} extension (the backup needs ${e.name} ${e.version})`, e.name === 'vector' ? `Use a server with pgvector ${e.version} or newer, e.g. the ${(0,postgres_tools/* pgvectorImage */.o5)(manifestMajor(manifest))} image` : `Install ${e.name} on the target`);
            }
            const best = [...versions].sort(compareVersions).pop();
            if (compareVersions(best, e.version) < 0) {
                throw new errors/* BackupError */.hj(`The test-restore target ${where} has ${e.name} ${best}, older than the backup's ${e.version}`, e.name === 'vector' ? `Use pgvector ${e.version} or newer (a current ${(0,postgres_tools/* pgvectorImage */.o5)(manifestMajor(manifest))} image)` : `Upgrade ${e.name} on the target`);
            }
        }
    }
    finally {
        await client.end().catch(() => undefined);
    }
}
async function urlTarget(manifest, opts) {
    const admin = (0,connection/* resolveConnection */.XC)(opts.testRestoreUrl, {}, 'test-restore-url');
    const where = `${admin.host}:${admin.port}`;
    const client = await (0,connection/* connect */.Ng)(admin);
    let major;
    try {
        const v = await client.query(`SELECT current_setting('server_version_num') AS n`);
        major = (0,postgres_tools/* serverMajor */.jk)(Number(v.rows[0].n));
    }
    finally {
        await client.end().catch(() => undefined);
    }
    if (major < manifestMajor(manifest)) {
        throw new errors/* BackupError */.hj(`The test-restore target ${where} runs PostgreSQL ${major}, older than the backup's source (${manifest.server.version})`, `Use a PostgreSQL ${manifestMajor(manifest)} or newer server, e.g. the ${(0,postgres_tools/* pgvectorImage */.o5)(manifestMajor(manifest))} image`);
    }
    await checkExtensions(admin, manifest, where);
    const tools = await (0,postgres_tools/* findClientTools */.Mt)(Math.max(major, manifest.pgDump.major), { env: opts.env, logger: opts.logger, ...(opts.pgBinDir ? { pgBinDir: opts.pgBinDir } : {}) });
    const dbName = tempDatabaseName();
    const c = await (0,connection/* connect */.Ng)(admin);
    try {
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(dbName)} TEMPLATE template0`);
    }
    catch (err) {
        throw new errors/* BackupError */.hj(`Cannot create a temporary database on the test-restore target ${where}: ${err.message}`, 'The test-restore-url user needs CREATEDB', { cause: err });
    }
    finally {
        await c.end().catch(() => undefined);
    }
    const target = {
        kind: 'url',
        description: `temporary database ${dbName} on ${where}`,
        conn: (0,connection/* withDatabase */.kR)(admin, dbName),
        tools,
        createdRoles: [],
        cleanup: async () => {
            const a = await (0,connection/* connect */.Ng)(admin).catch(() => undefined);
            if (!a)
                return;
            try {
                await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [dbName]);
                await a.query(`DROP DATABASE IF EXISTS ${a.escapeIdentifier(dbName)}`);
                for (const r of target.createdRoles.splice(0))
                    await a.query(`DROP ROLE IF EXISTS ${a.escapeIdentifier(r)}`).catch(() => undefined);
            }
            finally {
                await a.end().catch(() => undefined);
            }
        },
    };
    return target;
}
async function localTarget(manifest, opts, reasons) {
    const need = manifestMajor(manifest);
    const servers = (await (0,postgres_cluster/* findServers */.G9)(opts.env, opts.pgBinDir)).filter((s) => s.major >= need);
    if (!servers.length) {
        reasons.push(`no local PostgreSQL ${need}+ server binaries`);
        return undefined;
    }
    // Lowest fitting major first: closest to the source.
    servers.sort((a, b) => a.major - b.major);
    const exts = neededExtensions(manifest).map((e) => e.name);
    const server = servers.find((s) => (0,postgres_cluster/* providesExtensions */.P$)(s, exts).length === 0);
    if (!server) {
        const s = servers[0];
        reasons.push(`the local PostgreSQL ${s.major} (${s.dir}) lacks ${(0,postgres_cluster/* providesExtensions */.P$)(s, exts).join(', ')}`);
        return undefined;
    }
    if (server.major < manifest.pgDump.major) {
        reasons.push(`the local PostgreSQL ${server.major} cannot read a pg_dump ${manifest.pgDump.major} archive`);
        return undefined;
    }
    opts.logger.info(`Starting a throwaway PostgreSQL ${server.version} cluster (${server.dir})`);
    const cluster = await (0,postgres_cluster/* startCluster */.Jp)({ binDir: server.dir, auth: 'trust', logger: opts.logger });
    const conn = cluster.conn('restore');
    try {
        await checkExtensions(cluster.conn('postgres'), manifest, 'local cluster');
        const c = await (0,connection/* connect */.Ng)(cluster.conn('postgres'));
        await c.query('CREATE DATABASE restore TEMPLATE template0');
        await c.end();
    }
    catch (err) {
        await cluster.stop();
        throw err;
    }
    return {
        kind: 'local-cluster',
        description: `throwaway PostgreSQL ${server.version} cluster`,
        conn,
        tools: { kind: 'local', dir: server.dir, major: server.major, version: server.version },
        createdRoles: [],
        cleanup: () => cluster.stop(),
    };
}
/** `docker run` for a throwaway pgvector server on a loopback port; the password comes from the environment. */
function dockerRunArgs(name, image, port) {
    return ['run', '-d', '--rm', '--name', name, '-e', 'POSTGRES_PASSWORD', '-p', `127.0.0.1:${port}:5432`, image, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'maintenance_work_mem=1GB'];
}
async function dockerTarget(manifest, opts) {
    const major = manifestMajor(manifest);
    const image = (0,postgres_tools/* pgvectorImage */.o5)(Math.max(major, manifest.pgDump.major));
    const name = `pgvb-test-${(0,external_node_crypto_namespaceObject.randomBytes)(4).toString('hex')}`;
    const password = (0,external_node_crypto_namespaceObject.randomBytes)(18).toString('base64url');
    const port = await (0,postgres_cluster/* freePort */.ov)();
    const env = { ...opts.env, POSTGRES_PASSWORD: password };
    opts.logger.info(`Starting ${image} in Docker for the test restore`);
    const started = await (0,exec/* run */.eF)({ file: 'docker', args: dockerRunArgs(name, image, port), env });
    if (started.code !== 0)
        throw new errors/* BackupError */.hj(`docker run ${image} failed: ${started.stderr.trim()}`, 'Check that Docker can pull the image');
    const stop = async () => {
        await (0,exec/* run */.eF)({ file: 'docker', args: ['rm', '-f', name], env: opts.env }).catch(() => undefined);
    };
    const admin = { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', params: { sslmode: 'disable' } };
    try {
        const deadline = Date.now() + 90_000;
        for (;;) {
            const c = await (0,connection/* connect */.Ng)(admin).catch(() => undefined);
            if (c) {
                await c.query('CREATE DATABASE restore TEMPLATE template0');
                await c.end();
                break;
            }
            if (Date.now() > deadline)
                throw new errors/* BackupError */.hj(`${image} did not accept connections within 90 s`, 'Check the Docker daemon');
            await new Promise((r) => setTimeout(r, 1000));
        }
        await checkExtensions(admin, manifest, image);
    }
    catch (err) {
        await stop();
        throw err;
    }
    return {
        kind: 'docker',
        description: `${image} container`,
        conn: (0,connection/* withDatabase */.kR)(admin, 'restore'),
        tools: { kind: 'docker', image, major, version: String(major) },
        createdRoles: [],
        cleanup: stop,
    };
}

;// CONCATENATED MODULE: ./src/modes/test-restore.ts
// mode: test-restore (and verify: full after a backup). Restores the archive into a throwaway target and
// compares the result with the manifest exactly: rows, vector columns, indexes, sequences, extensions, large
// objects and an exact nearest-neighbour spot check. The target is always removed, even on failure.










async function testRestore(ctx, b) {
    const { config, logger, reporter } = ctx;
    const m = b.manifest;
    return logger.group(`Test restore ${b.name}`, async () => {
        let outcome;
        let targetDesc = '';
        try {
            const target = await acquireTarget(m, {
                env: config.env,
                logger,
                ...(config.testRestoreUrl ? { testRestoreUrl: config.testRestoreUrl } : {}),
                ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}),
            });
            targetDesc = target.description;
            const unregister = ctx.onCancel(() => target.cleanup());
            try {
                logger.info(`Target: ${target.description}`);
                // Plain SQL carries owners and grants that cannot be skipped at restore time: it needs the roles.
                const noOwner = !config.createRoles && m.format !== 'plain';
                if (!noOwner)
                    target.createdRoles.push(...(await createMissingRoles(target.conn, m.roles)));
                const timing = await restoreArchive(m, b.archivePath, target, {
                    jobs: config.jobs,
                    noOwner,
                    logger,
                    progressSeconds: config.progressSeconds,
                    env: config.env,
                    onCancel: ctx.onCancel,
                });
                for (const w of timing.warnings)
                    logger.warning(w);
                const client = await (0,connection/* connect */.Ng)(target.conn);
                let comparison;
                try {
                    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
                    const inv = await readInventory(client, m.knn ? { knnFrom: m.knn } : {});
                    await client.query('COMMIT');
                    comparison = compareInventory(m, inv);
                }
                finally {
                    await client.end().catch(() => undefined);
                }
                outcome = {
                    ok: comparison.mismatches.length === 0,
                    restoreSeconds: timing.restoreSeconds,
                    indexBuildSeconds: timing.indexBuildSeconds,
                    comparison,
                };
                logger.info(`Restored in ${timing.restoreSeconds.toFixed(1)} s` +
                    (timing.indexBuildSeconds !== null ? ` (post-data: ${timing.indexBuildSeconds.toFixed(1)} s)` : '') +
                    `; ${comparison.tables.length} tables compared, ${comparison.mismatches.length} mismatches` +
                    (comparison.knn ? `; kNN check on ${comparison.knn.table}: ${comparison.knn.ok ? 'same neighbours' : 'DIFFERENT'}` : ''));
                for (const mm of comparison.mismatches.slice(0, 50))
                    logger.error(describeMismatch(mm));
                if (comparison.mismatches.length > 50)
                    logger.error(`... and ${comparison.mismatches.length - 50} more mismatches`);
            }
            finally {
                await target.cleanup().catch((err) => logger.warning(`Cleaning up the test-restore target failed: ${err.message}`));
                unregister();
            }
        }
        catch (err) {
            if (!(err instanceof errors/* BackupError */.hj))
                throw err;
            logger.error((0,errors/* describeError */.Uc)(err));
            outcome = { ok: false, failure: (0,errors/* describeError */.Uc)(err) };
        }
        reporter.output('verified', outcome.ok);
        reporter.output('mismatches', outcome.comparison?.mismatches.length ?? (outcome.ok ? 0 : ''));
        if (outcome.restoreSeconds !== undefined)
            reporter.output('restore-seconds', outcome.restoreSeconds);
        if (outcome.indexBuildSeconds !== undefined && outcome.indexBuildSeconds !== null)
            reporter.output('index-build-seconds', outcome.indexBuildSeconds);
        await reporter.summary(restoreSummary(b, outcome, targetDesc));
        await recordVerification(ctx, b, {
            level: 'full',
            ok: outcome.ok,
            at: new Date().toISOString(),
            checks: outcome.ok ? ['test restore matches the manifest'] : [],
            ...(outcome.failure ? { failure: outcome.failure } : {}),
            ...(outcome.comparison ? { mismatches: outcome.comparison.mismatches.length } : {}),
            ...(outcome.restoreSeconds !== undefined ? { restoreSeconds: outcome.restoreSeconds } : {}),
            ...(outcome.indexBuildSeconds != null ? { indexBuildSeconds: outcome.indexBuildSeconds } : {}),
            ...(targetDesc ? { target: targetDesc } : {}),
        });
        return outcome;
    });
}
function restoreSummary(b, o, target) {
    const lines = [`## pgvector-backup: test restore of ${b.name}: ${o.ok ? 'passed' : '**FAILED**'}`, ''];
    if (target)
        lines.push(`Target: ${target}`, '');
    if (o.failure)
        lines.push(`**${o.failure}**`, '');
    if (o.restoreSeconds !== undefined) {
        lines.push(`Restore: ${o.restoreSeconds.toFixed(1)} s` + (o.indexBuildSeconds != null ? `, of which post-data (index builds): ${o.indexBuildSeconds.toFixed(1)} s` : ''), '');
    }
    const c = o.comparison;
    if (c) {
        lines.push(table(['Table', 'Rows expected', 'Rows restored', 'Vectors (restored/expected)', 'Indexes valid', 'OK'], c.tables.map((t) => [t.table, t.expectedRows, t.restoredRows ?? 'missing', t.vectors, t.indexes, t.ok ? 'yes' : '**no**'])), '');
        if (c.knn)
            lines.push(`Nearest-neighbour check on ${c.knn.table}: ${c.knn.samples} samples, top ${c.knn.k}: ${c.knn.ok ? 'identical' : '**different**'}`, '');
        if (c.mismatches.length) {
            lines.push('### Mismatches', '', table(['Kind', 'Object', 'Expected', 'Restored'], c.mismatches.slice(0, 100).map((m) => [m.kind, m.object, m.expected, m.actual])), '');
        }
    }
    return lines.join('\n');
}
/** mode: test-restore: quick checks first (a damaged archive is reported as such), then the restore. */
async function runTestRestore(ctx) {
    const { config } = ctx;
    const b = await resolveLocal(config.backup, config.backupDir, config.databaseNamed ? config.source.database : undefined);
    setBackupOutputs(ctx, b);
    const quick = await verifyOne(ctx, b);
    if (!quick.ok) {
        ctx.reporter.output('verified', false);
        throw new errors/* BackupError */.hj(`Backup ${b.name} failed verification before the test restore`, 'See the failed check above; use another backup');
    }
    const outcome = await testRestore(ctx, b);
    if (!outcome.ok && outcome.failure)
        throw new errors/* BackupError */.hj(outcome.failure);
    if (!outcome.ok) {
        const n = outcome.comparison?.mismatches.length;
        throw new errors/* BackupError */.hj(n ? `The test restore of ${b.name} differs from its manifest in ${n} place${n === 1 ? '' : 's'}` : `The test restore of ${b.name} failed`, n ? 'The backup does not hold what was recorded; see the mismatches above and do not rely on it' : 'See the error above');
    }
    return outcome;
}

;// CONCATENATED MODULE: ./src/modes/backup.ts
// mode: backup. One snapshot: a REPEATABLE READ READ ONLY transaction exports its snapshot, pg_dump dumps from
// it while the same transaction records the inventory, so the manifest is exact for what the archive holds.
// The archive is written under a temporary name, checksummed, renamed into place, and the manifest comes last.
















async function runBackup(ctx) {
    const { config, logger, reporter } = ctx;
    const src = config.source;
    const pooler = (0,connection/* poolerProblem */.T0)(src);
    if (pooler)
        throw new errors/* ConfigurationError */.j1(pooler);
    const client = await logger.group(`Connect to ${(0,connection/* describeTarget */.ff)(src)}`, async () => {
        const c = await (0,connection/* connect */.Ng)(src);
        const info = await readServerInfo(c);
        logger.info(`PostgreSQL ${info.serverVersion}, pgvector ${info.pgvectorVersion ?? 'not installed'}`);
        if (!info.pgvectorVersion)
            logger.warning(`The vector extension is not installed in database ${info.database}; backing it up anyway`);
        return c;
    });
    let partialPath;
    let finalArchive;
    let name = '';
    let manifestWritten = false;
    const unregister = ctx.onCancel(async () => {
        if (partialPath)
            await external_node_fs_.promises.rm(partialPath, { recursive: true, force: true });
    });
    try {
        const server = await readServerInfo(client);
        const major = (0,postgres_tools/* serverMajor */.jk)(server.serverVersionNum);
        const tools = await logger.group('Find pg_dump', () => (0,postgres_tools/* findClientTools */.Mt)(major, { env: config.env, logger, ...(config.pgBinDir ? { pgBinDir: config.pgBinDir } : {}) }));
        const plan = planCompression(config.format, config.compression.method, config.compression.level, tools.major);
        await external_node_fs_.promises.mkdir(config.backupDir, { recursive: true }).catch((err) => {
            throw writeError(err, external_node_path_default().join(config.backupDir, 'x'));
        });
        const createdAt = new Date();
        name = await uniqueName(config.backupDir, backupName(server.database, createdAt));
        const archiveFile = name + plan.suffix;
        finalArchive = external_node_path_default().join(config.backupDir, archiveFile);
        partialPath = `${finalArchive}.partial`;
        const started = Date.now();
        const { dump, inventory } = await logger.group(`Dump ${server.database} (${config.format}, ${plan.method}${plan.level !== null ? ' ' + plan.level : ''})`, async () => {
            await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
            const snap = await client.query('SELECT pg_export_snapshot() AS s');
            const snapshot = snap.rows[0].s;
            const rels = await listTables(client);
            await lockTables(client, rels, config.lockWaitTimeout);
            logger.info(`Snapshot ${snapshot}: ${rels.length} tables locked (ACCESS SHARE)`);
            const env = (0,connection/* libpqEnv */.kY)(src, config.env, connection/* SAFE_SESSION_OPTIONS */.mH);
            env.PGAPPNAME = 'pgvector-backup pg_dump';
            const args = pgDumpArgs({
                format: config.format,
                compression: plan,
                snapshot,
                lockWaitTimeout: config.lockWaitTimeout,
                jobs: config.jobs,
                ...(config.format === 'directory' ? { outputDir: partialPath } : {}),
            });
            const mounts = tools.kind === 'docker' ? [config.backupDir] : [];
            const command = (0,postgres_tools/* toolCommand */.WQ)(tools, 'pg_dump', args, env, mounts);
            const dumping = config.format === 'directory'
                ? dumpDirectory(ctx, command, partialPath)
                : streamDump({
                    command,
                    outFile: partialPath,
                    ...(plan.applied === 'stream' ? { compression: { method: plan.method, level: plan.level ?? undefined } } : {}),
                    logger,
                    progressSeconds: config.progressSeconds,
                    name: 'pg_dump',
                });
            // The inventory runs in the snapshot's transaction while pg_dump works; if either fails, stop the other.
            const counting = readInventory(client, {
                tables: rels,
                onProgress: (m) => logger.info(`  inventory: ${m}`),
            });
            const [d, inv] = await Promise.allSettled([dumping, counting]);
            if (d.status === 'rejected')
                throw d.reason;
            if (inv.status === 'rejected')
                throw inv.reason;
            await client.query('COMMIT');
            return { dump: d.value, inventory: inv.value };
        });
        const durationSeconds = (Date.now() - started) / 1000;
        // Complete: move into place, then write the manifest, last.
        await external_node_fs_.promises.rename(partialPath, finalArchive);
        partialPath = undefined;
        const t = totals(inventory);
        const manifest = {
            manifestVersion: MANIFEST_VERSION,
            tool: { name: TOOL_NAME, version: VERSION },
            name,
            createdAt: createdAt.toISOString(),
            database: server.database,
            server: { version: server.serverVersion, versionNum: server.serverVersionNum, pgvectorVersion: server.pgvectorVersion ?? null },
            pgDump: { version: tools.version, major: tools.major },
            format: config.format,
            compression: { method: plan.method, level: plan.level, applied: plan.applied },
            archive: {
                file: archiveFile,
                size: dump.size,
                sha256: dump.sha256,
                dumpBytes: dump.dumpBytes,
                ...(dump.files ? { files: dump.files } : {}),
            },
            durationSeconds: round(durationSeconds),
            totals: t,
            ...inventoryFields(inventory),
            verification: null,
        };
        const manifestPath = await writeManifest(config.backupDir, manifest);
        manifestWritten = true;
        logger.info(`Backup ${name}: ${formatBytes(dump.size)}${plan.applied === 'stream' ? ` (${formatBytes(dump.dumpBytes)} dumped)` : ''} in ${durationSeconds.toFixed(1)} s, ` +
            `${t.tables} tables, ${t.rows} rows, ${t.vectors} vectors, sha256 ${dump.sha256}`);
        const backup = { name, manifestPath, archivePath: finalArchive, manifest, createdAt, good: true };
        setBackupOutputs(ctx, backup);
        await reporter.summary(backupSummary(manifest, backup));
        let verified = config.verify === 'none';
        if (config.verify !== 'none') {
            const quick = await verifyOne(ctx, backup);
            verified = quick.ok;
            if (quick.ok && config.verify === 'full') {
                const restore = await testRestore(ctx, backup);
                verified = restore.ok;
            }
            if (!verified) {
                throw new errors/* BackupError */.hj(`Backup ${name} was written but failed verification`, 'See the verification output above; the backup is kept for inspection but is not counted as good');
            }
        }
        reporter.output('verified', verified && config.verify !== 'none');
        await logger.group('Retention', () => applyRetention(ctx, server.database, { dryRun: false }));
        return { backup, verified };
    }
    catch (err) {
        if (partialPath)
            await external_node_fs_.promises.rm(partialPath, { recursive: true, force: true }).catch(() => undefined);
        if (name)
            await external_node_fs_.promises.rm(`${manifestPathFor(config.backupDir, name)}.partial`, { force: true }).catch(() => undefined);
        // Archive in place but no manifest: not a backup. Remove it so nothing stays under a final name.
        if (finalArchive && !manifestWritten) {
            await deleteLocal({ archivePath: finalArchive, manifestPath: manifestPathFor(config.backupDir, name) }).catch(() => undefined);
        }
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
    }
    finally {
        unregister();
        await client.end().catch(() => undefined);
    }
}
async function uniqueName(dir, base) {
    for (let i = 0;; i++) {
        const candidate = i === 0 ? base : `${base}_${i + 1}`;
        const taken = (await external_node_fs_.promises.readdir(dir)).some((f) => f === `${candidate}.json` || f.startsWith(`${candidate}.`));
        if (!taken)
            return candidate;
    }
}
async function dumpDirectory(ctx, command, dir) {
    const { logger, config } = ctx;
    const res = await withProgress(logger, config.progressSeconds, (elapsed) => `  pg_dump (directory, ${config.jobs} jobs): ${elapsed.toFixed(0)} s`, (0,exec/* run */.eF)(command));
    if (res.code !== 0 || res.signal) {
        throw new errors/* BackupError */.hj(`${(0,exec/* describeExit */.KE)('pg_dump', res.code, res.signal)}: ${(0,exec/* lastLines */.w$)(res.stderr) || 'no error output'}`, 'See the error above; nothing was kept from this run');
    }
    const h = await hashDirectory(dir);
    return { dumpBytes: h.size, size: h.size, sha256: h.sha256, files: h.files };
}
function inventoryFields(inv) {
    return {
        extensions: inv.extensions,
        tables: inv.tables,
        indexes: inv.indexes,
        sequences: inv.sequences,
        largeObjects: inv.largeObjects,
        roles: inv.roles,
        knn: inv.knn ?? null,
    };
}
function round(n) {
    return Math.round(n * 1000) / 1000;
}
function setBackupOutputs(ctx, b) {
    const m = b.manifest;
    const r = ctx.reporter;
    r.output('backup-name', m.name);
    r.output('backup-path', b.archivePath);
    r.output('manifest-path', b.manifestPath);
    r.output('size-bytes', m.archive.size);
    r.output('sha256', m.archive.sha256);
    r.output('duration-seconds', m.durationSeconds);
    r.output('tables', m.totals.tables);
    r.output('rows', m.totals.rows);
    r.output('vectors', m.totals.vectors);
    r.output('server-version', m.server.version);
    r.output('pgvector-version', m.server.pgvectorVersion ?? '');
}
function backupSummary(m, b) {
    // With pg_dump's own compression the uncompressed size is unknown: no ratio then, and the rate is of the archive.
    const streamed = m.compression.applied === 'stream';
    const sizeText = streamed && m.archive.size > 0 ? `${formatBytes(m.archive.size)} (${formatBytes(m.archive.dumpBytes)} before compression, ratio ${(m.archive.dumpBytes / m.archive.size).toFixed(2)})` : formatBytes(m.archive.size);
    const rate = m.durationSeconds > 0 ? `${formatBytes(m.archive.dumpBytes / m.durationSeconds)}/s${streamed ? ' dumped' : ''}` : '-';
    const lines = [
        `## pgvector-backup: backup ${m.name}`,
        '',
        table(['', ''], [
            ['Database', `${m.database} (PostgreSQL ${m.server.version}, pgvector ${m.server.pgvectorVersion ?? 'none'})`],
            ['Archive', `\`${b.archivePath}\``],
            ['Format', `${m.format}, ${m.compression.method}${m.compression.level !== null ? ` ${m.compression.level}` : ''}`],
            ['Size', sizeText],
            ['Duration', `${m.durationSeconds.toFixed(1)} s (${rate})`],
            ['Contents', `${m.totals.tables} tables, ${m.totals.rows} rows, ${m.totals.vectors} vectors, ${m.indexes.length} indexes`],
            ['SHA-256', `\`${m.archive.sha256}\``],
        ]),
        '',
        '### Tables',
        '',
        table(['Table', 'Kind', 'Rows', 'Vector columns'], m.tables.map((t) => [
            `${t.schema}.${t.name}`,
            t.kind,
            t.rows,
            t.vectorColumns.map((c) => `${c.name} ${c.type}(${c.dimensions ?? '-'}): ${c.nonNull}`).join(', ') || '-',
        ])),
        '',
    ];
    return lines.join('\n');
}

;// CONCATENATED MODULE: ./src/modes/list.ts
// mode: list. This database's backups in backup-dir (all databases' when none is named), newest first.



function verifiedText(b) {
    const v = b.manifest.verification;
    if (!v)
        return 'not yet';
    return v.ok ? `yes (${v.level})` : `FAILED (${v.level})`;
}
async function runList(ctx) {
    const { config, logger, reporter } = ctx;
    const database = config.databaseNamed ? config.source.database : undefined;
    const scan = await scanLocal(config.backupDir, database);
    const rows = scan.backups.map((b) => [
        b.name,
        b.manifest.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        formatBytes(b.manifest.archive.size),
        `${b.manifest.format}/${b.manifest.compression.method}`,
        verifiedText(b),
        b.archivePath,
    ]);
    const header = ['Name', 'Created (UTC)', 'Size', 'Format', 'Verified', 'Path'];
    logger.info(`${scan.backups.length} backup(s) of ${database ?? 'all databases'} in ${config.backupDir}`);
    for (const r of rows)
        logger.info(`  ${r.slice(0, 5).join('  ')}`);
    for (const i of scan.invalid)
        logger.warning(`${i.path}: ${i.reason} (not a usable backup)`);
    for (const p of scan.partials)
        logger.info(`  leftover of an interrupted run: ${p.path}`);
    await reporter.summary([`## pgvector-backup: ${scan.backups.length} backup(s) in \`${config.backupDir}\``, '', rows.length ? table(header, rows) : '_none_', ''].join('\n'));
    const newest = scan.backups[0];
    if (newest) {
        reporter.output('backup-name', newest.name);
        reporter.output('backup-path', newest.archivePath);
        reporter.output('manifest-path', newest.manifestPath);
    }
    return scan.backups;
}

;// CONCATENATED MODULE: ./src/run.ts






async function runMode(ctx) {
    try {
        await dispatch(ctx);
    }
    catch (err) {
        throw (0,connection/* databaseError */.Kz)(err, ctx.config.mode);
    }
}
async function dispatch(ctx) {
    switch (ctx.config.mode) {
        case 'backup':
            await runBackup(ctx);
            return;
        case 'verify':
            await runVerify(ctx);
            return;
        case 'test-restore':
            await runTestRestore(ctx);
            return;
        case 'list':
            await runList(ctx);
            return;
        case 'prune':
            await runPrune(ctx);
            return;
    }
}

;// CONCATENATED MODULE: ./src/cli.ts
// The CLI: argv + environment (+ .env) -> the same Config -> the same modes. Exit codes: 0 ok, 1 failure,
// 2 usage or configuration error. Flags mirror the action's inputs (--backup-dir), plus the old kit's spellings
// (--retention 14, --list, --verify, --test-restore, --all) and environment (BACKUP_DIR, BACKUP_RETENTION_DAYS, DB_NAME).










const COMMANDS = {
    backup: 'Dump the database from one snapshot, write the manifest, verify, apply retention.',
    verify: 'Check a backup (latest, a name or a path; --all for every one): checksum, decompression, structure.',
    'test-restore': 'Restore a backup into a throwaway database and compare it with its manifest.',
    list: "List this database's backups in backup-dir.",
    prune: 'Apply retention to backup-dir (a dry run unless --dry-run false).',
    demo: 'Start a throwaway pgvector cluster with sample data and run the bundled action on it.',
};
/** Which inputs each command reads (for --help). */
const COMMAND_INPUTS = {
    backup: ['database-url', 'backup-dir', 'format', 'compression', 'compression-level', 'verify', 'test-restore-url', 'create-roles', 'retention-days', 'keep-min', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'jobs', 'lock-wait-timeout', 'pg-bin-dir', 'destination'],
    verify: ['backup', 'all', 'backup-dir', 'database-url', 'pg-bin-dir'],
    'test-restore': ['backup', 'backup-dir', 'database-url', 'test-restore-url', 'create-roles', 'jobs', 'pg-bin-dir'],
    list: ['backup-dir', 'database-url'],
    prune: ['backup-dir', 'database-url', 'dry-run', 'retention-days', 'keep-min', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly'],
};
const OLD_KIT_COMMAND_FLAGS = { '--list': 'list', '--verify': 'verify', '--test-restore': 'test-restore' };
/** Parses argv (without node and script). Pure; table-tested. */
function parseArgs(argv) {
    const out = { command: 'backup', inputs: {}, json: false, verbose: false, help: false };
    let commandSet = false;
    const positional = [];
    const byFlag = new Map();
    for (const spec of inputs/* INPUTS */.mc) {
        byFlag.set(`--${spec.name}`, spec);
        for (const a of 'aliases' in spec ? spec.aliases : [])
            byFlag.set(`--${a}`, spec);
    }
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '--help' || arg === '-h') {
            out.help = true;
            continue;
        }
        if (arg === '--version' || arg === '-V') {
            out.command = 'version';
            commandSet = true;
            continue;
        }
        if (arg === '--json') {
            out.json = true;
            continue;
        }
        if (arg === '--verbose' || arg === '-v') {
            out.verbose = true;
            continue;
        }
        // --verify is both the old kit's command flag and the verify input (--verify quick): a level makes it the input.
        if (arg in OLD_KIT_COMMAND_FLAGS && !(arg === '--verify' && /^(none|quick|full)$/.test(argv[i + 1] ?? ''))) {
            out.command = OLD_KIT_COMMAND_FLAGS[arg];
            commandSet = true;
            continue;
        }
        if (arg.startsWith('--')) {
            const eq = arg.indexOf('=');
            const flag = eq === -1 ? arg : arg.slice(0, eq);
            const spec = byFlag.get(flag);
            if (!spec)
                throw new errors/* ConfigurationError */.j1(`Unknown option ${flag}; see pgvector-backup ${commandSet ? out.command + ' ' : ''}--help`);
            let value = eq === -1 ? undefined : arg.slice(eq + 1);
            if (value === undefined) {
                const next = argv[i + 1];
                const isBool = 'boolean' in spec && spec.boolean;
                if (isBool && (next === undefined || !/^(true|false|yes|no|1|0|on|off)$/i.test(next)))
                    value = 'true';
                else {
                    if (next === undefined)
                        throw new errors/* ConfigurationError */.j1(`Option ${flag} needs a value`);
                    value = next;
                    i++;
                }
            }
            out.inputs[spec.name] = value;
            continue;
        }
        if (!commandSet && inputs/* MODES */.FN.concat(['demo', 'help']).includes(arg)) {
            out.command = arg;
            commandSet = true;
            continue;
        }
        positional.push(arg);
    }
    if (out.command === 'help') {
        out.help = true;
        out.command = 'backup';
    }
    if (positional.length) {
        if (!['verify', 'test-restore'].includes(out.command) || positional.length > 1) {
            throw new errors/* ConfigurationError */.j1(`Unexpected argument "${positional.join(' ')}"; see pgvector-backup --help`);
        }
        out.inputs.backup = positional[0];
    }
    return out;
}
/** Reads KEY=VALUE lines of a .env file (no expansion). Existing environment variables win. */
function parseDotEnv(text) {
    const out = {};
    for (const raw of text.split(/\r?\n/)) {
        const line = raw.trim();
        if (!line || line.startsWith('#'))
            continue;
        const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
        if (!m)
            continue;
        let v = m[2];
        const quoted = /^(["'])(.*?)\1\s*(#.*)?$/.exec(v);
        if (quoted)
            v = quoted[2];
        else
            v = v.replace(/\s+#.*$/, '');
        out[m[1]] = v;
    }
    return out;
}
/** The environment the CLI works with: process env, then .env in the working directory, then the old kit's names. */
function cliEnvironment(env, cwd) {
    const merged = { ...env };
    const file = external_node_path_default().join(cwd, '.env');
    if ((0,external_node_fs_.existsSync)(file)) {
        for (const [k, v] of Object.entries(parseDotEnv((0,external_node_fs_.readFileSync)(file, 'utf8'))))
            if (merged[k] === undefined)
                merged[k] = v;
    }
    if (!merged.PGDATABASE && merged.DB_NAME)
        merged.PGDATABASE = merged.DB_NAME;
    return merged;
}
function usage(command) {
    if (command && command !== 'demo') {
        const lines = [`Usage: pgvector-backup ${command} [options]${command === 'verify' || command === 'test-restore' ? ' [BACKUP]' : ''}`, '', COMMANDS[command], '', 'Options:'];
        for (const name of COMMAND_INPUTS[command]) {
            const spec = inputs/* INPUTS */.mc.find((i) => i.name === name);
            const alias = 'aliases' in spec ? ` (also --${spec.aliases.join(', --')})` : '';
            const env = 'env' in spec ? ` [env ${spec.env.join(', ')}]` : '';
            const def = spec.default ? ` (default: ${spec.default})` : '';
            lines.push(`  --${name}${alias}${env}`, `      ${spec.description}${def}`);
        }
        lines.push('', 'Connection: --database-url, else PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (or DB_NAME), also from ./.env.', 'Global: --json (print outputs as JSON), --verbose, --help.');
        return lines.join('\n');
    }
    return [
        `pgvector-backup ${VERSION}: back up PostgreSQL + pgvector, prove every backup restores.`,
        '',
        'Usage: pgvector-backup <command> [options]',
        '',
        'Commands:',
        ...Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(13)} ${d}`),
        '',
        'Run pgvector-backup <command> --help for its options. Exit codes: 0 ok, 1 failure, 2 usage or configuration error.',
        'Old kit spellings: --list, --verify, --test-restore, --retention N, --all.',
    ].join('\n');
}
class CliReporter {
    secrets;
    outputs = {};
    summaries = [];
    constructor(secrets) {
        this.secrets = secrets;
    }
    output(name, value) {
        this.outputs[name] = this.secrets.scrub(String(value));
    }
    async summary(markdown) {
        this.summaries.push(this.secrets.scrub(markdown));
    }
}
async function runCli(argv, io, demo) {
    const secrets = new Secrets();
    try {
        const args = parseArgs(argv);
        if (args.command === 'version') {
            io.stdout(VERSION + '\n');
            return 0;
        }
        if (args.help) {
            io.stdout(usage(args.command === 'backup' && !argv.includes('backup') ? undefined : args.command) + '\n');
            return 0;
        }
        if (args.command === 'demo') {
            if (!demo)
                throw new errors/* ConfigurationError */.j1('demo is not available here');
            return await demo();
        }
        const env = cliEnvironment(io.env, io.cwd);
        const get = (name) => {
            const v = args.inputs[name];
            if (v !== undefined)
                return v;
            const spec = inputs/* INPUTS */.mc.find((i) => i.name === name);
            for (const e of 'env' in spec ? spec.env : [])
                if (env[e])
                    return env[e];
            return undefined;
        };
        const config = buildConfig((name) => (name === 'mode' ? args.command : get(name)), env);
        for (const s of config.secrets)
            secrets.add(s);
        if (config.testRestoreUrl)
            secrets.add((0,connection/* resolveConnection */.XC)(config.testRestoreUrl, {}, 'test-restore-url').password);
        const logger = new ConsoleLogger(secrets, args.verbose, (l) => io.stderr(l + '\n'));
        const reporter = new CliReporter(secrets);
        let failure;
        try {
            await runMode({ config, logger, reporter, onCancel: onCancel });
        }
        catch (err) {
            failure = err;
        }
        if (args.json)
            io.stdout(JSON.stringify(reporter.outputs, null, 2) + '\n');
        else if (config.mode === 'list' || config.mode === 'prune')
            io.stdout(reporter.summaries.join('\n'));
        else
            for (const o of inputs/* OUTPUTS */.py)
                if (reporter.outputs[o.name] !== undefined)
                    io.stdout(`${o.name}=${reporter.outputs[o.name]}\n`);
        if (failure)
            throw failure;
        return 0;
    }
    catch (err) {
        io.stderr(`error: ${secrets.scrub((0,errors/* describeError */.Uc)(err))}\n`);
        if (!(err instanceof Error) || !['BackupError', 'ConfigurationError'].includes(err.name)) {
            io.stderr(secrets.scrub(err instanceof Error ? (err.stack ?? '') : '') + '\n');
        }
        return (0,errors/* exitCodeFor */.Rr)(err);
    }
}


/***/ }),

/***/ 1844:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  nN: () => (/* binding */ runDemo)
});

// UNUSED EXPORTS: actionEnv, parseOutputFile

// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __nccwpck_require__(1421);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(3024);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __nccwpck_require__(6760);
var external_node_path_default = /*#__PURE__*/__nccwpck_require__.n(external_node_path_);
;// CONCATENATED MODULE: external "node:url"
const external_node_url_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");
// EXTERNAL MODULE: ./src/inputs.ts
var inputs = __nccwpck_require__(8422);
// EXTERNAL MODULE: ./src/postgres/cluster.ts + 1 modules
var postgres_cluster = __nccwpck_require__(4259);
// EXTERNAL MODULE: ./src/postgres/connection.ts + 1 modules
var connection = __nccwpck_require__(8077);
;// CONCATENATED MODULE: ./src/demo/seed.ts
async function seedRagDataset(client, opts = {}) {
    const docs = opts.documents ?? 2000;
    const dims = opts.dimensions ?? 384;
    const perDoc = opts.chunksPerDocument ?? 2;
    await client.query('CREATE EXTENSION IF NOT EXISTS vector');
    await client.query('SELECT setseed(0.42)');
    await client.query(`
    CREATE TABLE documents (
      id bigserial PRIMARY KEY,
      title text NOT NULL,
      body text NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      embedding vector(${dims}),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
    await client.query(`
    INSERT INTO documents (title, body, metadata, embedding)
    SELECT 'Document ' || g,
           repeat('Retrieval augmented generation keeps answers grounded. ', 4 + g % 5),
           jsonb_build_object('source', CASE WHEN g % 3 = 0 THEN 'wiki' ELSE 'docs' END, 'n', g),
           CASE WHEN g % 50 = 0 THEN NULL
                ELSE (SELECT array_agg(random()::real) FROM generate_series(1, ${dims}) WHERE g > 0)::vector END
      FROM generate_series(1, ${docs}) AS g`);
    await client.query(`CREATE INDEX documents_embedding_hnsw ON documents USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`);
    await client.query(`CREATE INDEX documents_metadata_gin ON documents USING gin (metadata)`);
    await client.query(`
    CREATE TABLE chunks (
      id serial PRIMARY KEY,
      document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
      ordinal int NOT NULL,
      content text NOT NULL,
      embedding halfvec(64)
    )`);
    await client.query(`
    INSERT INTO chunks (document_id, ordinal, content, embedding)
    SELECT d.id, o, 'chunk ' || o || ' of ' || d.title,
           (SELECT array_agg(random()::real) FROM generate_series(1, 64) WHERE d.id > 0 AND o > 0)::halfvec
      FROM documents d CROSS JOIN generate_series(1, ${perDoc}) AS o`);
    await client.query(`CREATE INDEX chunks_embedding_ivfflat ON chunks USING ivfflat (embedding halfvec_l2_ops) WITH (lists = 10)`);
    await client.query(`CREATE INDEX chunks_document ON chunks (document_id)`);
    await client.query('ANALYZE');
    return { documents: docs, chunks: docs * perDoc };
}

;// CONCATENATED MODULE: ./src/demo/run.ts
// `pgvector-backup demo` (npm run demo): a throwaway pgvector cluster with a RAG-like dataset, then the bundled
// action itself (`node dist/index.js` with INPUT_* variables and GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files, as the
// runner runs it) through backup (with a full test restore) and list. Everything it writes stays in ./.demo.








const DEMO_PASSWORD = 'demo p@ss:/w%rd';
/** The environment a runner gives an action: INPUT_* (hyphens kept), the file commands, nothing inherited. */
function actionEnv(inputs, files, base) {
    const env = {};
    for (const [k, v] of Object.entries(base)) {
        if (/^(GITHUB_|INPUT_|ACTIONS_|RUNNER_|PG)/.test(k))
            continue;
        env[k] = v;
    }
    for (const [k, v] of Object.entries(inputs))
        env[`INPUT_${k.toUpperCase()}`] = v;
    env.GITHUB_OUTPUT = files.output;
    env.GITHUB_STEP_SUMMARY = files.summary;
    return env;
}
/** Parses a GITHUB_OUTPUT file (name<<delimiter blocks and name=value lines). */
function parseOutputFile(text) {
    const out = {};
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        const m = /^([^=<]+)<<(.+)$/.exec(line);
        if (m) {
            const value = [];
            i++;
            while (i < lines.length && lines[i] !== m[2])
                value.push(lines[i++]);
            out[m[1]] = value.join('\n');
        }
        else if (line.includes('=')) {
            out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
        }
    }
    return out;
}
function runAction(actionJs, env) {
    return new Promise((resolve, reject) => {
        const child = (0,external_node_child_process_.spawn)(process.execPath, [actionJs], { env, stdio: ['ignore', 'pipe', 'inherit'] });
        // The runner consumes ::add-mask:: commands and never shows them; neither does the demo.
        let carry = '';
        child.stdout.on('data', (d) => {
            const lines = (carry + d.toString()).split('\n');
            carry = lines.pop() ?? '';
            for (const l of lines)
                if (!l.startsWith('::add-mask::'))
                    process.stderr.write(l + '\n');
        });
        child.stdout.on('end', () => carry && process.stderr.write(carry + '\n'));
        child.on('error', reject);
        child.on('close', (code) => resolve(code ?? 1));
    });
}
async function runDemo() {
    const here = external_node_path_default().dirname((0,external_node_url_namespaceObject.fileURLToPath)(import.meta.url));
    const actionJs = external_node_path_default().resolve(here, '..', 'index.js');
    if (!(0,external_node_fs_.existsSync)(actionJs)) {
        process.stderr.write(`The bundled action ${actionJs} is missing: run npm run build first\n`);
        return 1;
    }
    // (Computed at run time: a literal path relative to the working directory would be rewritten by ncc into
    // a bundled asset path.)
    const work = external_node_path_default().resolve(process.env.PGVB_DEMO_DIR ?? ['.', 'demo'].join(''));
    await external_node_fs_.promises.rm(work, { recursive: true, force: true });
    await external_node_fs_.promises.mkdir(work, { recursive: true });
    const servers = (await (0,postgres_cluster/* findServers */.G9)(process.env)).filter((s) => (0,postgres_cluster/* providesExtensions */.P$)(s, ['vector']).length === 0);
    const server = servers[0];
    if (!server) {
        process.stderr.write('No local PostgreSQL server with pgvector was found. Run: bash test/setup/ensure-pgvector.sh\n');
        return 1;
    }
    process.stderr.write(`== Starting a throwaway PostgreSQL ${server.version} cluster with pgvector\n`);
    const cluster = await (0,postgres_cluster/* startCluster */.Jp)({ binDir: server.dir, auth: 'scram', password: DEMO_PASSWORD });
    try {
        const admin = await (0,connection/* connect */.Ng)(cluster.conn('postgres'));
        await admin.query('CREATE DATABASE vector_db');
        await admin.end();
        const db = await (0,connection/* connect */.Ng)(cluster.conn('vector_db'));
        const seeded = await seedRagDataset(db);
        await db.end();
        process.stderr.write(`   seeded vector_db: ${seeded.documents} documents (vector(384), HNSW), ${seeded.chunks} chunks (halfvec(64), IVFFlat)\n`);
        const url = `postgresql://postgres:${encodeURIComponent(DEMO_PASSWORD)}@127.0.0.1:${cluster.port}/vector_db`;
        const backupDir = external_node_path_default().join(work, 'backups', 'postgres');
        let status = 0;
        for (const [step, inputs] of [
            ['backup (verify: full = checksum + structure + test restore)', { mode: 'backup', verify: 'full' }],
            ['list', { mode: 'list' }],
        ]) {
            const files = { output: external_node_path_default().join(work, `${inputs.mode}.output`), summary: external_node_path_default().join(work, `${inputs.mode}.summary.md`) };
            await external_node_fs_.promises.writeFile(files.output, '');
            await external_node_fs_.promises.writeFile(files.summary, '');
            process.stderr.write(`\n== node dist/index.js: ${step}\n`);
            const code = await runAction(actionJs, actionEnv({ ...defaultsFor(), ...inputs, 'database-url': url, 'backup-dir': backupDir }, files, process.env));
            const outputs = parseOutputFile(await external_node_fs_.promises.readFile(files.output, 'utf8'));
            process.stderr.write(`   exit code ${code}; outputs:\n`);
            for (const [k, v] of Object.entries(outputs))
                process.stderr.write(`     ${k} = ${v}\n`);
            process.stderr.write(`   job summary: ${files.summary}\n`);
            if (code !== 0)
                status = code;
        }
        process.stderr.write(`\n== Done. Backups and manifests are in ${backupDir}; summaries and outputs in ${work}\n`);
        return status;
    }
    finally {
        await cluster.stop();
    }
}
/** The defaults the runner injects from action.yml. */
function defaultsFor() {
    return Object.fromEntries(inputs/* INPUTS */.mc.map((i) => [i.name, i.default]));
}


/***/ }),

/***/ 3916:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   Rr: () => (/* binding */ exitCodeFor),
/* harmony export */   Uc: () => (/* binding */ describeError),
/* harmony export */   hj: () => (/* binding */ BackupError),
/* harmony export */   j1: () => (/* binding */ ConfigurationError)
/* harmony export */ });
// User mistakes (bad inputs) and run failures (the database, the disk, a tool) are different classes with
// different exit codes; anything else is a bug. Every message that reaches a user says what to do.
/** A bad input or setting: the user fixes the configuration. CLI exit code 2. */
class ConfigurationError extends Error {
    name = 'ConfigurationError';
}
/** The run failed for a reason outside our code (connection, disk, tool, data). CLI exit code 1. */
class BackupError extends Error {
    hint;
    name = 'BackupError';
    constructor(message, 
    /** What the user should do about it. */
    hint, options) {
        super(message, options);
        this.hint = hint;
    }
}
/** One line for the user: the message and, when known, what to do. */
function describeError(err) {
    if (err instanceof BackupError)
        return err.hint ? `${err.message}. ${err.hint}` : err.message;
    if (err instanceof Error)
        return err.message;
    return String(err);
}
function exitCodeFor(err) {
    return err instanceof ConfigurationError ? 2 : 1;
}


/***/ }),

/***/ 3190:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   KE: () => (/* binding */ describeExit),
/* harmony export */   PW: () => (/* binding */ Tail),
/* harmony export */   eF: () => (/* binding */ run),
/* harmony export */   nj: () => (/* binding */ spawnCommand),
/* harmony export */   rK: () => (/* binding */ terminateChildren),
/* harmony export */   w$: () => (/* binding */ lastLines),
/* harmony export */   zE: () => (/* binding */ waitForExit)
/* harmony export */ });
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(1421);
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__nccwpck_require__.n(node_child_process__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(3916);
// Every child process goes through here: no shell, the environment given explicitly, stderr kept (the tail)
// for error messages, and the exit code and signal always checked by the caller.


const KEEP = 64 * 1024;
/** Keeps the last `KEEP` characters of a stream: enough for an error message, bounded in memory. */
class Tail {
    text = '';
    push(chunk) {
        this.text += chunk.toString();
        if (this.text.length > KEEP * 2)
            this.text = this.text.slice(-KEEP);
    }
    toString() {
        return this.text.slice(-KEEP);
    }
}
const running = new Set();
function spawnCommand(cmd, stdio) {
    const options = { env: cmd.env ?? process.env, stdio, shell: false };
    if (cmd.cwd)
        options.cwd = cmd.cwd;
    if (cmd.uid !== undefined)
        options.uid = cmd.uid;
    if (cmd.gid !== undefined)
        options.gid = cmd.gid;
    const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_0__.spawn)(cmd.file, cmd.args, options);
    running.add(child);
    child.once('close', () => running.delete(child));
    child.once('error', () => running.delete(child));
    return child;
}
/** Stops every child still running (on cancellation), so none outlives the run. */
function terminateChildren() {
    for (const c of running)
        c.kill('SIGTERM');
}
/** Waits for a child's exit; resolves with code and signal, rejects only when it could not start. */
function waitForExit(child) {
    return new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) {
            resolve({ code: child.exitCode, signal: child.signalCode });
            return;
        }
        child.once('error', (err) => {
            if (err.code === 'ENOENT' || err.code === 'EACCES') {
                reject(new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .BackupError */ .hj(`Cannot run ${child.spawnfile}: ${err.code === 'ENOENT' ? 'not found' : 'permission denied'}`, 'Install it or set pg-bin-dir to the directory that holds the PostgreSQL programs', { cause: err }));
            }
            else
                reject(err);
        });
        child.once('close', (code, signal) => resolve({ code, signal }));
    });
}
/** Runs a command to completion and returns its output (keeps all stdout: only for small outputs). */
async function run(cmd, input) {
    const child = spawnCommand(cmd, [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
    let stdout = '';
    const stderr = new Tail();
    child.stdout?.on('data', (d) => (stdout += d.toString()));
    child.stderr?.on('data', (d) => stderr.push(d));
    if (input !== undefined) {
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(input);
    }
    const { code, signal } = await waitForExit(child);
    return { code, signal, stdout, stderr: stderr.toString() };
}
function describeExit(name, code, signal) {
    return signal ? `${name} was killed by ${signal}` : `${name} exited with code ${code}`;
}
/** The last meaningful lines of a tool's stderr, for one-line error messages. */
function lastLines(stderr, n = 3) {
    return stderr
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .slice(-n)
        .join(' | ');
}


/***/ }),

/***/ 8422:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   FN: () => (/* binding */ MODES),
/* harmony export */   mc: () => (/* binding */ INPUTS),
/* harmony export */   py: () => (/* binding */ OUTPUTS)
/* harmony export */ });
// Every input and output name is written here once. action.yml and the README's tables are generated from
// this file (scripts/gen-action.mjs), the CLI derives its flags from it, and a test checks they agree.
const INPUTS = [
    {
        name: 'mode',
        description: 'What to do: backup | verify | test-restore | list | prune.',
        default: 'backup',
    },
    {
        name: 'database-url',
        description: 'Connection URI of the database to back up (postgresql://user:pass@host:5432/db?sslmode=require). Secret. ' +
            "When empty, libpq's PG* environment variables are used (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).",
        default: '',
        secret: true,
    },
    {
        name: 'destination',
        description: 'Where backups are stored: local (the backup-dir on this machine).',
        default: 'local',
    },
    {
        name: 'backup-dir',
        description: 'Directory that holds the backups and their manifests.',
        default: 'backups/postgres',
        env: ['BACKUP_DIR'],
    },
    {
        name: 'format',
        description: 'custom (pg_dump -Fc, restore with pg_restore) | plain (SQL, restore with psql) | directory (pg_dump -Fd, parallel with jobs).',
        default: 'custom',
    },
    {
        name: 'compression',
        description: 'gzip | zstd | none. custom and directory archives use pg_dump\'s own compression where it supports the method ' +
            '(zstd needs pg_dump 16+; otherwise the archive is streamed through zstd and gets a .zst suffix).',
        default: 'gzip',
    },
    {
        name: 'compression-level',
        description: 'Compression level (gzip 1-9, default 6; zstd 1-19, default 3). Empty for the default.',
        default: '',
    },
    {
        name: 'verify',
        description: 'After a backup: none | quick (checksum, decompression and structure) | full (quick + a test restore compared with the manifest).',
        default: 'full',
    },
    {
        name: 'backup',
        description: 'For verify and test-restore: latest (newest complete backup of the database in backup-dir), a backup name, or a path.',
        default: 'latest',
    },
    {
        name: 'all',
        description: 'For verify: check every backup in backup-dir instead of one.',
        default: 'false',
        boolean: true,
    },
    {
        name: 'test-restore-url',
        description: 'A server to test-restore into (for example a pgvector/pgvector service container). A uniquely named temporary ' +
            'database is created there and dropped afterwards. Empty: a throwaway local cluster, else a Docker container. Secret.',
        default: '',
        secret: true,
    },
    {
        name: 'create-roles',
        description: 'Test restore: create the roles the dump references (NOLOGIN) and restore owners and grants, instead of --no-owner --no-acl.',
        default: 'false',
        boolean: true,
    },
    {
        name: 'retention-days',
        description: 'Delete this database\'s complete backups older than this many days after a successful backup (0 keeps all by age).',
        default: '7',
        aliases: ['retention'],
        env: ['BACKUP_RETENTION_DAYS'],
    },
    {
        name: 'keep-min',
        description: 'Always keep at least this many newest complete backups, whatever their age.',
        default: '1',
    },
    {
        name: 'keep-daily',
        description: 'Also keep the newest backup of each of the last N days.',
        default: '0',
    },
    {
        name: 'keep-weekly',
        description: 'Also keep the newest backup of each of the last N ISO weeks.',
        default: '0',
    },
    {
        name: 'keep-monthly',
        description: 'Also keep the newest backup of each of the last N months.',
        default: '0',
    },
    {
        name: 'keep-yearly',
        description: 'Also keep the newest backup of each of the last N years.',
        default: '0',
    },
    {
        name: 'dry-run',
        description: 'For prune: print what would be deleted without deleting. Set to false to delete.',
        default: 'true',
    },
    {
        name: 'jobs',
        description: 'Parallel jobs for directory-format dumps and for pg_restore. Empty: the number of CPUs.',
        default: '',
    },
    {
        name: 'lock-wait-timeout',
        description: 'How long to wait for a table lock held by another session before failing (PostgreSQL interval, e.g. 60s, 5min).',
        default: '60s',
    },
    {
        name: 'pg-bin-dir',
        description: 'Directory with the pg_dump, pg_restore and psql to use. Empty: the closest version at least the server\'s is searched on PATH and in the usual places (/usr/lib/postgresql/*/bin, Homebrew), then installed on GitHub runners, then run from a pgvector Docker image.',
        default: '',
    },
];
const OUTPUTS = [
    { name: 'backup-name', description: 'Name of the backup (also the archive and manifest file stem).' },
    { name: 'backup-path', description: 'Path of the archive file (or directory).' },
    { name: 'manifest-path', description: 'Path of the manifest JSON.' },
    { name: 'size-bytes', description: 'Size of the archive in bytes.' },
    { name: 'sha256', description: 'SHA-256 of the archive as stored.' },
    { name: 'duration-seconds', description: 'Seconds the dump took.' },
    { name: 'tables', description: 'Number of tables in the backup.' },
    { name: 'rows', description: 'Total rows in the backup (exact, from the dump\'s snapshot).' },
    { name: 'vectors', description: 'Total non-null vector values in the backup.' },
    { name: 'server-version', description: 'PostgreSQL server version of the source.' },
    { name: 'pgvector-version', description: 'pgvector extension version in the source (empty when not installed).' },
    { name: 'verified', description: 'true when the requested verification passed, else false.' },
    { name: 'restore-seconds', description: 'Seconds the test restore took (all phases).' },
    { name: 'index-build-seconds', description: 'Seconds the test restore spent in post-data (index builds, constraints).' },
    { name: 'mismatches', description: 'Number of differences the test restore found against the manifest.' },
];
const MODES = ['backup', 'verify', 'test-restore', 'list', 'prune'];


/***/ }),

/***/ 4259:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  G9: () => (/* binding */ findServers),
  ov: () => (/* binding */ freePort),
  QS: () => (/* binding */ maintenanceWorkMem),
  P$: () => (/* binding */ providesExtensions),
  Jp: () => (/* binding */ startCluster)
});

// UNUSED EXPORTS: clusterBaseDir, clusterUser, throwawaySettings

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(3024);
;// CONCATENATED MODULE: external "node:net"
const external_node_net_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:net");
var external_node_net_default = /*#__PURE__*/__nccwpck_require__.n(external_node_net_namespaceObject);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __nccwpck_require__(8161);
var external_node_os_default = /*#__PURE__*/__nccwpck_require__.n(external_node_os_);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __nccwpck_require__(6760);
var external_node_path_default = /*#__PURE__*/__nccwpck_require__.n(external_node_path_);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __nccwpck_require__(3916);
// EXTERNAL MODULE: ./src/exec.ts
var exec = __nccwpck_require__(3190);
// EXTERNAL MODULE: ./src/postgres/tools.ts
var tools = __nccwpck_require__(8880);
;// CONCATENATED MODULE: ./src/postgres/cluster.ts
// Throwaway PostgreSQL clusters in a temp directory: the test restore's default target, the demo's source and
// the test bed. initdb refuses to run as root, so as root the cluster runs as an unprivileged system user.








/** The unprivileged account to run a cluster as when we are root: postgres, else nobody. */
function clusterUser() {
    if (process.getuid?.() !== 0)
        return undefined;
    let passwd = '';
    try {
        passwd = (0,external_node_fs_.readFileSync)('/etc/passwd', 'utf8');
    }
    catch {
        return undefined;
    }
    for (const wanted of ['postgres', 'nobody']) {
        const line = passwd.split('\n').find((l) => l.startsWith(wanted + ':'));
        if (!line)
            continue;
        const [name, , uid, gid] = line.split(':');
        return { name: name, uid: Number(uid), gid: Number(gid) };
    }
    return undefined;
}
function freePort() {
    return new Promise((resolve, reject) => {
        const srv = external_node_net_default().createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const addr = srv.address();
            srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
        });
    });
}
/** Memory for index builds in a throwaway cluster: a quarter of RAM, at most 2 GB (HNSW builds need it). */
function maintenanceWorkMem(totalBytes = external_node_os_default().totalmem()) {
    const mb = Math.max(64, Math.min(2048, Math.floor(totalBytes / 4 / 1024 / 1024)));
    return `${mb}MB`;
}
/** Settings for a cluster whose data may be lost: fast restore, no durability. */
function throwawaySettings() {
    const cpus = Math.max(1, external_node_os_default().availableParallelism());
    return {
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        wal_level: 'minimal',
        max_wal_senders: 0,
        max_wal_size: '8GB',
        checkpoint_timeout: '30min',
        shared_buffers: '256MB',
        maintenance_work_mem: maintenanceWorkMem(),
        max_parallel_maintenance_workers: Math.max(0, cpus - 1),
        max_worker_processes: Math.max(8, cpus * 2),
        autovacuum: 'off',
        max_connections: 50,
        logging_collector: 'off',
    };
}
function conf(settings) {
    return Object.entries(settings)
        .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${String(v).replace(/'/g, "''")}'`}`)
        .join('\n');
}
/**
 * Where to put a cluster that runs as `runAs`: the temp directory when that user can reach it (every ancestor
 * searchable by others), else /tmp.
 */
function clusterBaseDir(runAs, tmp = external_node_os_default().tmpdir()) {
    if (!runAs)
        return tmp;
    let dir = external_node_path_default().resolve(tmp);
    for (;;) {
        try {
            if (((0,external_node_fs_.statSync)(dir).mode & 0o001) === 0)
                return '/tmp';
        }
        catch {
            return '/tmp';
        }
        const parent = external_node_path_default().dirname(dir);
        if (parent === dir)
            return tmp;
        dir = parent;
    }
}
async function startCluster(opts) {
    const runAs = clusterUser();
    const dir = await external_node_fs_.promises.mkdtemp(external_node_path_default().join(clusterBaseDir(runAs), 'pgvb-cluster-'));
    const dataDir = external_node_path_default().join(dir, 'data');
    const superuser = opts.superuser ?? 'postgres';
    const as = (file, args) => ({
        file: external_node_path_default().join(opts.binDir, file),
        args,
        env: { ...stripPg(process.env), LC_ALL: 'C' },
        cwd: dir,
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let started = false;
    const remove = () => (0,external_node_fs_.rmSync)(dir, { recursive: true, force: true });
    try {
        if (runAs)
            await external_node_fs_.promises.chown(dir, runAs.uid, runAs.gid);
        await external_node_fs_.promises.chmod(dir, 0o700);
        const initArgs = ['-D', dataDir, '-U', superuser, '-E', 'UTF8', '--locale=C', '--no-sync'];
        if (opts.auth === 'scram') {
            const pwfile = external_node_path_default().join(dir, 'pwfile');
            await external_node_fs_.promises.writeFile(pwfile, (opts.password ?? '') + '\n', { mode: 0o600 });
            if (runAs)
                await external_node_fs_.promises.chown(pwfile, runAs.uid, runAs.gid);
            initArgs.push('--auth-local=scram-sha-256', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
        }
        else {
            initArgs.push('--auth=trust');
        }
        const init = await (0,exec/* run */.eF)(as('initdb', initArgs));
        await external_node_fs_.promises.rm(external_node_path_default().join(dir, 'pwfile'), { force: true });
        if (init.code !== 0)
            throw new errors/* BackupError */.hj(`initdb failed: ${(0,exec/* lastLines */.w$)(init.stderr)}`, 'Check that the PostgreSQL server binaries work and the temp directory is writable');
        const port = await freePort();
        const settings = {
            port,
            listen_addresses: opts.auth === 'scram' ? '127.0.0.1' : '',
            unix_socket_directories: dir,
            ...throwawaySettings(),
            ...(opts.settings ?? {}),
        };
        if (opts.auth === 'scram')
            settings.password_encryption = 'scram-sha-256';
        await external_node_fs_.promises.appendFile(external_node_path_default().join(dataDir, 'postgresql.conf'), '\n' + conf(settings) + '\n');
        const logFile = external_node_path_default().join(dir, 'server.log');
        const start = await (0,exec/* run */.eF)(as('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s', 'start']));
        if (start.code !== 0) {
            let log = '';
            try {
                log = (0,external_node_fs_.readFileSync)(logFile, 'utf8');
            }
            catch {
                /* no log */
            }
            throw new errors/* BackupError */.hj(`Starting a throwaway PostgreSQL cluster failed: ${(0,exec/* lastLines */.w$)(start.stderr + '\n' + log)}`, 'Check the PostgreSQL server installation');
        }
        started = true;
        const host = opts.auth === 'scram' ? '127.0.0.1' : dir;
        const cluster = {
            dir,
            binDir: opts.binDir,
            port,
            host,
            superuser,
            conn: (database = 'postgres') => {
                const c = { host, port, user: superuser, database, params: { sslmode: 'disable' } };
                if (opts.password !== undefined)
                    c.password = opts.password;
                return c;
            },
            stop: async () => {
                if (!(0,external_node_fs_.existsSync)(dir))
                    return;
                await (0,exec/* run */.eF)(as('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', '-s', 'stop'])).catch(() => undefined);
                remove();
            },
        };
        return cluster;
    }
    catch (err) {
        if (started)
            await (0,exec/* run */.eF)(as('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-s', 'stop'])).catch(() => undefined);
        remove();
        throw err;
    }
}
function stripPg(env) {
    return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('PG')));
}
/** Local server installations (initdb + pg_ctl + postgres), newest first, with their extension directory. */
async function findServers(env, pgBinDir) {
    const found = await (0,tools/* discover */.k4)('initdb', env, pgBinDir);
    const out = [];
    for (const c of found) {
        if (!(0,external_node_fs_.existsSync)(external_node_path_default().join(c.dir, 'pg_ctl')) || !(0,external_node_fs_.existsSync)(external_node_path_default().join(c.dir, 'postgres')))
            continue;
        const ext = await (0,tools/* extensionDir */.dW)(c.dir, c.major);
        out.push(ext ? { ...c, extensionDir: ext } : c);
    }
    return out.sort((a, b) => b.major - a.major);
}
/** Whether a server installation can CREATE EXTENSION each of `extensions` (its control file is present). */
function providesExtensions(server, extensions) {
    const missing = [];
    for (const e of extensions) {
        if (e === 'plpgsql')
            continue;
        if (!server.extensionDir || !(0,external_node_fs_.existsSync)(external_node_path_default().join(server.extensionDir, `${e}.control`)))
            missing.push(e);
    }
    return missing;
}


/***/ }),

/***/ 8077:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  mH: () => (/* binding */ SAFE_SESSION_OPTIONS),
  Ng: () => (/* binding */ connect),
  Kz: () => (/* binding */ databaseError),
  ff: () => (/* binding */ describeTarget),
  kY: () => (/* binding */ libpqEnv),
  T0: () => (/* binding */ poolerProblem),
  XC: () => (/* binding */ resolveConnection),
  kR: () => (/* binding */ withDatabase)
});

// UNUSED EXPORTS: connectionError, parseConnectionString, pgConfig

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(3024);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __nccwpck_require__(8161);
var external_node_os_default = /*#__PURE__*/__nccwpck_require__.n(external_node_os_);
// EXTERNAL MODULE: ./node_modules/pg/lib/index.js
var lib = __nccwpck_require__(3273);
;// CONCATENATED MODULE: ./node_modules/pg/esm/index.mjs
// ESM wrapper for pg


// Re-export all the properties
const Client = lib.Client
const Pool = lib.Pool
const Connection = lib.Connection
const types = lib.types
const Query = lib.Query
const DatabaseError = lib.DatabaseError
const escapeIdentifier = lib.escapeIdentifier
const escapeLiteral = lib.escapeLiteral
const Result = lib.Result
const TypeOverrides = lib.TypeOverrides

// Also export the defaults
const defaults = lib.defaults

// Re-export the default
/* harmony default export */ const esm = (lib);

// EXTERNAL MODULE: ./src/errors.ts
var errors = __nccwpck_require__(3916);
;// CONCATENATED MODULE: ./src/postgres/connection.ts
// Connection settings resolve like libpq: the URL's values, then the PG* environment, then libpq's defaults.
// The password never goes into argv: children get it through their environment.




/** libpq parameters we pass on, with their environment variable. */
const PARAM_ENV = {
    sslmode: 'PGSSLMODE',
    sslrootcert: 'PGSSLROOTCERT',
    sslcert: 'PGSSLCERT',
    sslkey: 'PGSSLKEY',
    sslcrl: 'PGSSLCRL',
    connect_timeout: 'PGCONNECT_TIMEOUT',
    application_name: 'PGAPPNAME',
    options: 'PGOPTIONS',
    target_session_attrs: 'PGTARGETSESSIONATTRS',
    gssencmode: 'PGGSSENCMODE',
    channel_binding: 'PGCHANNELBINDING',
};
const URL_HINT = 'Expected postgresql://user:password@host:5432/dbname (percent-encode special characters in the password)';
/** Parses a postgresql:// URI or a libpq keyword=value string. Never includes the input in an error. */
function parseConnectionString(s, what = 'database-url') {
    const text = s.trim();
    if (/^postgres(ql)?:\/\//i.test(text))
        return parseUri(text, what);
    if (/^\s*\w+\s*=/.test(text))
        return parseKeywordValue(text, what);
    throw new errors/* ConfigurationError */.j1(`${what} is not a PostgreSQL connection string. ${URL_HINT}`);
}
/**
 * libpq's URI rules, which WHATWG URL parsing does not follow: an empty authority (postgresql:///db?host=/tmp),
 * a percent-encoded socket directory as the host, '+' kept as '+' in parameters.
 */
function parseUri(text, what) {
    const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/i.exec(text);
    if (!m)
        throw new errors/* ConfigurationError */.j1(`${what} is not a valid URL. ${URL_HINT}`);
    const [, authority = '', path = '', query = ''] = m;
    const decode = (v, part) => {
        try {
            return decodeURIComponent(v);
        }
        catch {
            throw new errors/* ConfigurationError */.j1(`${what} has a badly percent-encoded ${part}. ${URL_HINT}`);
        }
    };
    const out = { params: {} };
    const at = authority.lastIndexOf('@');
    const userinfo = at === -1 ? '' : authority.slice(0, at);
    const hostport = at === -1 ? authority : authority.slice(at + 1);
    if (userinfo) {
        const colon = userinfo.indexOf(':');
        const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
        if (user)
            out.user = decode(user, 'user name');
        if (colon !== -1)
            out.password = decode(userinfo.slice(colon + 1), 'password');
    }
    if (hostport) {
        const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostport);
        if (!hp || hostport.includes(',') || /\s/.test(hostport)) {
            throw new errors/* ConfigurationError */.j1(`${what} is not a valid URL (host and port). ${URL_HINT}`);
        }
        const host = hp[1].replace(/^\[|\]$/g, '');
        if (host)
            out.host = decode(host, 'host');
        if (hp[2]) {
            const port = Number(hp[2]);
            if (!Number.isInteger(port) || port < 1 || port > 65535)
                throw new errors/* ConfigurationError */.j1(`${what} is not a valid URL: the port must be a number from 1 to 65535`);
            out.port = port;
        }
    }
    if (path)
        out.database = decode(path, 'database name');
    for (const pair of query.split('&')) {
        if (!pair)
            continue;
        const eq = pair.indexOf('=');
        const key = decode(eq === -1 ? pair : pair.slice(0, eq), 'parameter');
        assignParam(out, key, decode(eq === -1 ? '' : pair.slice(eq + 1), 'parameter'));
    }
    return out;
}
function parseKeywordValue(text, what) {
    const out = { params: {} };
    const re = /\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/gy;
    let m;
    let last = 0;
    while ((m = re.exec(text)) !== null) {
        assignParam(out, m[1], m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]);
        last = re.lastIndex;
    }
    if (text.slice(last).trim() !== '') {
        throw new errors/* ConfigurationError */.j1(`${what} has a malformed keyword=value pair. Expected host=... port=... dbname=... user=...`);
    }
    return out;
}
function assignParam(out, key, value) {
    switch (key) {
        case 'host':
        case 'hostaddr':
            out.host = value;
            break;
        case 'port':
            out.port = Number(value);
            break;
        case 'user':
            out.user = value;
            break;
        case 'password':
            out.password = value;
            break;
        case 'dbname':
            out.database = value;
            break;
        default:
            out.params[key] = value;
    }
}
/** Resolves a complete connection: explicit string, then PG* environment, then libpq defaults. */
function resolveConnection(connectionString, env = process.env, what = 'database-url') {
    const given = connectionString ? parseConnectionString(connectionString, what) : { params: {} };
    const port = given.port ?? (env.PGPORT ? Number(env.PGPORT) : 5432);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new errors/* ConfigurationError */.j1(`${what} has an invalid port; use a number from 1 to 65535`);
    }
    const user = given.user ?? env.PGUSER ?? safeUsername();
    const params = {};
    for (const [key, envName] of Object.entries(PARAM_ENV)) {
        const v = given.params[key] ?? env[envName];
        if (v !== undefined && v !== '')
            params[key] = v;
    }
    for (const [k, v] of Object.entries(given.params))
        if (!(k in params))
            params[k] = v;
    const info = {
        host: given.host ?? env.PGHOST ?? defaultHost(port),
        port,
        user,
        database: given.database ?? env.PGDATABASE ?? user,
        params,
    };
    const password = given.password ?? env.PGPASSWORD;
    if (password !== undefined && password !== '')
        info.password = password;
    return info;
}
function safeUsername() {
    try {
        return external_node_os_default().userInfo().username;
    }
    catch {
        return 'postgres';
    }
}
/** libpq's default is the Unix socket directory when a server listens there, else localhost. */
function defaultHost(port) {
    for (const dir of ['/var/run/postgresql', '/tmp']) {
        if ((0,external_node_fs_.existsSync)(`${dir}/.s.PGSQL.${port}`))
            return dir;
    }
    return 'localhost';
}
function describeTarget(info) {
    return `${info.database} on ${info.host}:${info.port} as ${info.user}`;
}
/**
 * Transaction-mode poolers hand each statement to any backend, so an exported snapshot cannot be shared with
 * pg_dump. Returns the fix when the connection looks like one.
 */
function poolerProblem(info) {
    const host = info.host.toLowerCase();
    if (host.endsWith('.pooler.supabase.com') && info.port === 6543) {
        return 'This is Supabase\'s transaction-mode pooler (port 6543), which cannot share a snapshot with pg_dump. Use the direct connection (db.<project>.supabase.co:5432) or the session-mode pooler (port 5432)';
    }
    if (/-pooler[.-]/.test(host) && host.includes('neon')) {
        return 'This is Neon\'s pooled endpoint (-pooler in the host name), which cannot share a snapshot with pg_dump. Use the direct endpoint: remove "-pooler" from the host name';
    }
    if (info.port === 6543) {
        return 'Port 6543 is usually a transaction-mode pooler (PgBouncer), which cannot share a snapshot with pg_dump. Connect to the server directly or through a session-mode pooler';
    }
    return undefined;
}
/** Environment for libpq tools (pg_dump, pg_restore, psql): the password travels here, never in argv. */
function libpqEnv(info, base = process.env, extraOptions = '') {
    const env = {};
    for (const [k, v] of Object.entries(base)) {
        // Inherited PG* settings (PGSERVICE, PGPASSWORD of another server ...) must not leak into this connection.
        if (!k.startsWith('PG'))
            env[k] = v;
    }
    if (base.PGPASSFILE && info.password === undefined)
        env.PGPASSFILE = base.PGPASSFILE;
    env.PGHOST = info.host;
    env.PGPORT = String(info.port);
    env.PGUSER = info.user;
    env.PGDATABASE = info.database;
    if (info.password !== undefined)
        env.PGPASSWORD = info.password;
    for (const [key, envName] of Object.entries(PARAM_ENV)) {
        const v = info.params[key];
        if (v !== undefined)
            env[envName] = v;
    }
    env.PGAPPNAME ??= 'pgvector-backup';
    const options = [info.params.options, extraOptions].filter(Boolean).join(' ');
    if (options)
        env.PGOPTIONS = options;
    return env;
}
/** Session settings that keep hostile role defaults from killing a long backup. */
const SAFE_SESSION_OPTIONS = '-c statement_timeout=0 -c idle_in_transaction_session_timeout=0 -c lock_timeout=0';
function withDatabase(info, database) {
    return { ...info, database, params: { ...info.params } };
}
/** node-postgres settings for the same connection. */
function pgConfig(info, extraOptions = SAFE_SESSION_OPTIONS) {
    const sslmode = info.params.sslmode;
    let ssl = false;
    if (sslmode === 'require' || sslmode === 'no-verify')
        ssl = { rejectUnauthorized: false };
    else if (sslmode === 'verify-ca' || sslmode === 'verify-full') {
        ssl = { rejectUnauthorized: true };
        if (info.params.sslrootcert)
            ssl.ca = readFileQuiet(info.params.sslrootcert);
    }
    const timeout = Number(info.params.connect_timeout ?? '15');
    const config = {
        host: info.host,
        port: info.port,
        user: info.user,
        database: info.database,
        ssl,
        application_name: info.params.application_name ?? 'pgvector-backup',
        connectionTimeoutMillis: (Number.isFinite(timeout) && timeout > 0 ? timeout : 15) * 1000,
        options: [info.params.options, extraOptions].filter(Boolean).join(' ') || undefined,
    };
    if (info.password !== undefined)
        config.password = info.password;
    return config;
}
function readFileQuiet(path) {
    try {
        return (0,external_node_fs_.readFileSync)(path, 'utf8');
    }
    catch {
        return undefined;
    }
}
/** Connects, turning the usual failures into one line that says what to do. */
async function connect(info, extraOptions) {
    const client = new esm.Client(pgConfig(info, extraOptions));
    // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
    client.on('error', () => undefined);
    try {
        await client.connect();
    }
    catch (err) {
        await client.end().catch(() => undefined);
        throw connectionError(err, info);
    }
    return client;
}
function connectionError(err, info) {
    const e = err;
    const where = `${info.host}:${info.port}`;
    const msg = e.message ?? String(err);
    switch (e.code) {
        case 'ECONNREFUSED':
            return new errors/* BackupError */.hj(`Cannot connect to PostgreSQL at ${where}: connection refused`, 'Check the host and port in database-url and that the server is running and accepts TCP connections from this machine', { cause: err });
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
            return new errors/* BackupError */.hj(`Cannot resolve the database host "${info.host}"`, 'Check the host name in database-url', { cause: err });
        case 'ETIMEDOUT':
        case 'EHOSTUNREACH':
        case 'ENETUNREACH':
            return new errors/* BackupError */.hj(`Cannot reach PostgreSQL at ${where}: ${e.code}`, 'Check the host, the port and that a firewall or IP allow-list lets this runner in', { cause: err });
        case '28P01':
            return new errors/* BackupError */.hj(`Password authentication failed for user "${info.user}"`, 'Check the password in database-url or PGPASSWORD (the repository secret)', { cause: err });
        case '28000':
            return new errors/* BackupError */.hj(`The server refused user "${info.user}": ${msg}`, 'Check the user name, and the server\'s pg_hba.conf or IP allow-list for this runner; managed services often need sslmode=require', { cause: err });
        case '3D000':
            return new errors/* BackupError */.hj(`Database "${info.database}" does not exist on ${where}`, 'Check the database name at the end of database-url (or PGDATABASE)', { cause: err });
        case '53300':
            return new errors/* BackupError */.hj(`The server at ${where} has no free connection slots`, 'Retry later or raise max_connections; a backup needs two connections', { cause: err });
        default:
            if (/timeout/i.test(msg)) {
                return new errors/* BackupError */.hj(`Cannot reach PostgreSQL at ${where}: connection timed out`, 'Check the host, the port and that a firewall or IP allow-list lets this runner in', { cause: err });
            }
            return new errors/* BackupError */.hj(`Cannot connect to ${describeTarget(info)}: ${msg}`, 'Check database-url', { cause: err });
    }
}
/** pg's DatabaseError (it has a SQLSTATE code and a severity) as a BackupError whose hint says what to do. */
function databaseError(err, during) {
    const e = err;
    if (!e || typeof e !== 'object' || typeof e.code !== 'string' || !e.severity) {
        if (e instanceof Error && /Connection terminated|ECONNRESET|EPIPE/.test(e.message)) {
            return new errors/* BackupError */.hj(`The database connection was lost during ${during}: ${e.message}`, 'The server restarted or the connection was terminated; run again', { cause: err });
        }
        return err;
    }
    const msg = `PostgreSQL error during ${during}: ${e.message} (SQLSTATE ${e.code})`;
    const hint = e.code === '42501'
        ? 'The role lacks a privilege: grant it SELECT on the objects (or pg_read_all_data) and USAGE on their schemas'
        : e.code.startsWith('57P')
            ? 'The server terminated the connection (restart, shutdown or pg_terminate_backend); run again'
            : e.code === '57014'
                ? 'A statement was cancelled (statement_timeout or a cancel request); run again'
                : e.code.startsWith('53')
                    ? 'The server ran out of a resource (disk, memory or connections); fix that and run again'
                    : e.code.startsWith('08')
                        ? 'The connection failed; check the network and the server and run again'
                        : 'Check the database and run again';
    return new errors/* BackupError */.hj(msg, hint, { cause: err });
}


/***/ }),

/***/ 8880:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   Mt: () => (/* binding */ findClientTools),
/* harmony export */   WQ: () => (/* binding */ toolCommand),
/* harmony export */   dW: () => (/* binding */ extensionDir),
/* harmony export */   g$: () => (/* binding */ dockerAvailable),
/* harmony export */   jk: () => (/* binding */ serverMajor),
/* harmony export */   k4: () => (/* binding */ discover),
/* harmony export */   o5: () => (/* binding */ pgvectorImage)
/* harmony export */ });
/* unused harmony exports parseToolVersion, chooseTools, candidateDirs, dockerCommand */
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__nccwpck_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__nccwpck_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_2__ = __nccwpck_require__(3916);
/* harmony import */ var _exec_js__WEBPACK_IMPORTED_MODULE_3__ = __nccwpck_require__(3190);
// Finding PostgreSQL client and server programs. A pg_dump must be at least the server's major version;
// we choose the closest such major, because a newer pg_dump writes archives an older pg_restore cannot read.




/** "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> { major: 15, version: "15.18" } */
function parseToolVersion(text) {
    const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text) ?? /\b(\d+)\.(\d+)\b/.exec(text);
    if (!m)
        return undefined;
    const major = Number(m[1]);
    return { major, version: m[2] !== undefined ? `${major}.${m[2]}` : `${major}` };
}
/** The server's major version from server_version_num (150004 -> 15; 90624 -> 9, any pg_dump 10+ reads 9.x). */
function serverMajor(serverVersionNum) {
    return Math.floor(serverVersionNum / 10000);
}
/**
 * Picks the tools to use: the preferred directory when its major is new enough, else the lowest major that
 * is at least the server's (so archives stay readable by the same-major pg_restore). Pure; table-tested.
 */
function chooseTools(candidates, minMajor, preferredDir) {
    const fit = candidates.filter((c) => c.major >= minMajor);
    if (preferredDir) {
        const preferred = fit.find((c) => node_path__WEBPACK_IMPORTED_MODULE_1___default().resolve(c.dir) === node_path__WEBPACK_IMPORTED_MODULE_1___default().resolve(preferredDir));
        if (preferred)
            return preferred;
    }
    return [...fit].sort((a, b) => a.major - b.major)[0];
}
/** Directories where PostgreSQL programs usually live, in order of preference. */
function candidateDirs(env, pgBinDir) {
    const dirs = [];
    if (pgBinDir)
        dirs.push(pgBinDir);
    for (const d of (env.PATH ?? '').split((node_path__WEBPACK_IMPORTED_MODULE_1___default().delimiter)))
        if (d)
            dirs.push(d);
    const globs = [
        ['/usr/lib/postgresql', /^\d+$/, 'bin'],
        ['/usr', /^pgsql-\d+$/, 'bin'],
        ['/opt/homebrew/opt', /^postgresql@\d+$/, 'bin'],
        ['/usr/local/opt', /^postgresql@\d+$/, 'bin'],
        ['/Applications/Postgres.app/Contents/Versions', /^\d+$/, 'bin'],
    ];
    for (const [base, re, sub] of globs) {
        let names = [];
        try {
            names = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.readdirSync)(base).filter((n) => re.test(n));
        }
        catch {
            continue;
        }
        names.sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')));
        for (const n of names)
            dirs.push(node_path__WEBPACK_IMPORTED_MODULE_1___default().join(base, n, sub));
    }
    dirs.push('/opt/homebrew/bin', '/usr/local/bin');
    return dirs;
}
function isExecutable(file) {
    try {
        (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.accessSync)(file, node_fs__WEBPACK_IMPORTED_MODULE_0__.constants.X_OK);
        return true;
    }
    catch {
        return false;
    }
}
/** Every distinct directory that holds `tool`, with the tool's version (only `pgBinDir` when `only`). */
async function discover(tool, env, pgBinDir, only = false) {
    const seen = new Set();
    const out = [];
    for (const dir of only && pgBinDir ? [pgBinDir] : candidateDirs(env, pgBinDir)) {
        const file = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(dir, tool);
        if (!(0,node_fs__WEBPACK_IMPORTED_MODULE_0__.existsSync)(file) || !isExecutable(file))
            continue;
        let real;
        try {
            real = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.realpathSync)(file);
        }
        catch {
            continue;
        }
        if (seen.has(real))
            continue;
        seen.add(real);
        const res = await (0,_exec_js__WEBPACK_IMPORTED_MODULE_3__/* .run */ .eF)({ file, args: ['--version'], env }).catch(() => undefined);
        const v = res && res.code === 0 ? parseToolVersion(res.stdout) : undefined;
        // A symlink to the real installation (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) stands
        // for that directory, where the sibling programs are; a wrapper script (Debian's pg_wrapper) stays as found.
        const home = node_path__WEBPACK_IMPORTED_MODULE_1___default().basename(real) === tool ? node_path__WEBPACK_IMPORTED_MODULE_1___default().dirname(real) : dir;
        if (v)
            out.push({ dir: home, ...v });
    }
    return out;
}
/** Docker argv that runs a PostgreSQL client program from the pgvector image. Pure; table-tested. */
function dockerCommand(image, tool, args, env, mounts = []) {
    const argv = ['run', '--rm', '-i', '--network', 'host'];
    // `-e NAME` without a value copies it from docker's own environment, so secrets stay out of argv.
    for (const name of Object.keys(env).filter((k) => k.startsWith('PG')).sort())
        argv.push('-e', name);
    for (const m of mounts)
        argv.push('-v', `${m}:${m}`);
    argv.push('--entrypoint', tool, image, ...args);
    return { file: 'docker', args: argv, env };
}
function toolCommand(tools, tool, args, env, mounts = []) {
    if (tools.kind === 'docker')
        return dockerCommand(tools.image, tool, args, env, mounts);
    return { file: node_path__WEBPACK_IMPORTED_MODULE_1___default().join(tools.dir, tool), args, env };
}
function pgvectorImage(major) {
    return `pgvector/pgvector:pg${major}`;
}
async function dockerAvailable(env) {
    const res = await (0,_exec_js__WEBPACK_IMPORTED_MODULE_3__/* .run */ .eF)({ file: 'docker', args: ['info', '--format', '{{.ServerVersion}}'], env }).catch(() => undefined);
    return !!res && res.code === 0 && res.stdout.trim() !== '';
}
/**
 * Finds client tools for a server of `minMajor`: local programs first, then (on a GitHub Linux runner) the
 * PGDG package for that major, then a pgvector Docker image. Fails before any dump, naming both versions.
 */
async function findClientTools(minMajor, opts) {
    const { env, logger } = opts;
    if (opts.pgBinDir) {
        // An explicit pg-bin-dir is what the user wants used: no silent fallback to another installation.
        const found = await discover('pg_dump', env, opts.pgBinDir, true);
        const fit = chooseTools(found, minMajor, opts.pgBinDir);
        if (fit) {
            logger.info(`Using pg_dump ${fit.version} from ${fit.dir}`);
            return { kind: 'local', ...fit };
        }
        throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .BackupError */ .hj(found.length
            ? `pg_dump ${found[0].version} in pg-bin-dir ${opts.pgBinDir} is older than the PostgreSQL ${minMajor} server`
            : `pg-bin-dir ${opts.pgBinDir} has no working pg_dump (needed: version ${minMajor} or newer)`, `Point pg-bin-dir at the bin directory of PostgreSQL ${minMajor} or newer client programs, or leave it empty to search PATH and the usual places`);
    }
    let candidates = await discover('pg_dump', env);
    let chosen = chooseTools(candidates, minMajor);
    if (!chosen && (opts.allowInstall ?? env.GITHUB_ACTIONS === 'true') && process.platform === 'linux') {
        if (await installClient(minMajor, env, logger)) {
            candidates = await discover('pg_dump', env);
            chosen = chooseTools(candidates, minMajor);
        }
    }
    if (chosen) {
        logger.info(`Using pg_dump ${chosen.version} from ${chosen.dir}`);
        return { kind: 'local', ...chosen };
    }
    if (await dockerAvailable(env)) {
        const image = pgvectorImage(minMajor);
        logger.info(`No local pg_dump ${minMajor}+; running the client tools from ${image}`);
        return { kind: 'docker', image, major: minMajor, version: String(minMajor) };
    }
    const found = candidates.length ? candidates.map((c) => `${c.version} (${c.dir})`).join(', ') : 'none';
    throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .BackupError */ .hj(`No pg_dump of version ${minMajor} or newer was found for this PostgreSQL ${minMajor} server (found: ${found})`, `Install the client for that version (apt-get install postgresql-client-${minMajor} from the PGDG repository, or brew install postgresql@${minMajor}) or point pg-bin-dir at its bin directory`);
}
async function installClient(major, env, logger) {
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const runAs = (args) => (sudo.length ? { file: sudo[0], args: [...sudo.slice(1), ...args], env } : { file: args[0], args: args.slice(1), env });
    logger.info(`Installing postgresql-client-${major} from the PGDG apt repository`);
    const script = '/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh';
    if ((0,node_fs__WEBPACK_IMPORTED_MODULE_0__.existsSync)(script)) {
        const r = await (0,_exec_js__WEBPACK_IMPORTED_MODULE_3__/* .run */ .eF)(runAs([script, '-y']));
        if (r.code !== 0)
            logger.warning(`Adding the PGDG repository failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
    }
    const inst = await (0,_exec_js__WEBPACK_IMPORTED_MODULE_3__/* .run */ .eF)(runAs(['apt-get', 'install', '-y', '-q', `postgresql-client-${major}`]));
    if (inst.code !== 0) {
        logger.warning(`apt-get install postgresql-client-${major} failed: ${inst.stderr.trim().split('\n').pop() ?? ''}`);
        return false;
    }
    return true;
}
/** The directory that holds extension control files for a server installation. */
async function extensionDir(binDir, major) {
    const pgConfig = node_path__WEBPACK_IMPORTED_MODULE_1___default().join(binDir, 'pg_config');
    if ((0,node_fs__WEBPACK_IMPORTED_MODULE_0__.existsSync)(pgConfig)) {
        const r = await (0,_exec_js__WEBPACK_IMPORTED_MODULE_3__/* .run */ .eF)({ file: pgConfig, args: ['--sharedir'] }).catch(() => undefined);
        if (r && r.code === 0 && r.stdout.trim())
            return node_path__WEBPACK_IMPORTED_MODULE_1___default().join(r.stdout.trim(), 'extension');
    }
    for (const d of [
        node_path__WEBPACK_IMPORTED_MODULE_1___default().join(binDir, '..', 'share', 'postgresql', 'extension'),
        node_path__WEBPACK_IMPORTED_MODULE_1___default().join(binDir, '..', 'share', 'extension'),
        `/usr/share/postgresql/${major}/extension`,
    ]) {
        if ((0,node_fs__WEBPACK_IMPORTED_MODULE_0__.existsSync)(d))
            return d;
    }
    return undefined;
}


/***/ }),

/***/ 4390:
/***/ ((module) => {

module.exports = eval("require")("pg-native");


/***/ }),

/***/ 6982:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("crypto");

/***/ }),

/***/ 2250:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("dns");

/***/ }),

/***/ 4434:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("events");

/***/ }),

/***/ 9896:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("fs");

/***/ }),

/***/ 9278:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("net");

/***/ }),

/***/ 1421:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");

/***/ }),

/***/ 3024:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");

/***/ }),

/***/ 8161:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");

/***/ }),

/***/ 6760:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");

/***/ }),

/***/ 6928:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("path");

/***/ }),

/***/ 2203:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("stream");

/***/ }),

/***/ 3193:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("string_decoder");

/***/ }),

/***/ 4756:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("tls");

/***/ }),

/***/ 9023:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("util");

/***/ }),

/***/ 8253:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("util/types");

/***/ })

/******/ });
/************************************************************************/
/******/ // The module cache
/******/ var __webpack_module_cache__ = {};
/******/ 
/******/ // The require function
/******/ function __nccwpck_require__(moduleId) {
/******/ 	// Check if module is in cache
/******/ 	var cachedModule = __webpack_module_cache__[moduleId];
/******/ 	if (cachedModule !== undefined) {
/******/ 		return cachedModule.exports;
/******/ 	}
/******/ 	// Create a new module (and put it into the cache)
/******/ 	var module = __webpack_module_cache__[moduleId] = {
/******/ 		// no module.id needed
/******/ 		// no module.loaded needed
/******/ 		exports: {}
/******/ 	};
/******/ 
/******/ 	// Execute the module function
/******/ 	var threw = true;
/******/ 	try {
/******/ 		__webpack_modules__[moduleId](module, module.exports, __nccwpck_require__);
/******/ 		threw = false;
/******/ 	} finally {
/******/ 		if(threw) delete __webpack_module_cache__[moduleId];
/******/ 	}
/******/ 
/******/ 	// Return the exports of the module
/******/ 	return module.exports;
/******/ }
/******/ 
/************************************************************************/
/******/ /* webpack/runtime/asset-relocator-loader */
/******/ if (typeof __nccwpck_require__ !== 'undefined') __nccwpck_require__.ab = decodeURIComponent(new URL('.', import.meta.url).pathname).slice(import.meta.url.match(/^file:\/\/\/\w:/) ? 1 : 0, -1) + "/";
/******/ 
/******/ /* webpack/runtime/async module */
/******/ (() => {
/******/ 	var webpackQueues = typeof Symbol === "function" ? Symbol("webpack queues") : "__webpack_queues__";
/******/ 	var webpackExports = typeof Symbol === "function" ? Symbol("webpack exports") : "__webpack_exports__";
/******/ 	var webpackError = typeof Symbol === "function" ? Symbol("webpack error") : "__webpack_error__";
/******/ 	var resolveQueue = (queue) => {
/******/ 		if(queue && queue.d < 1) {
/******/ 			queue.d = 1;
/******/ 			queue.forEach((fn) => (fn.r--));
/******/ 			queue.forEach((fn) => (fn.r-- ? fn.r++ : fn()));
/******/ 		}
/******/ 	}
/******/ 	var wrapDeps = (deps) => (deps.map((dep) => {
/******/ 		if(dep !== null && typeof dep === "object") {
/******/ 			if(dep[webpackQueues]) return dep;
/******/ 			if(dep.then) {
/******/ 				var queue = [];
/******/ 				queue.d = 0;
/******/ 				dep.then((r) => {
/******/ 					obj[webpackExports] = r;
/******/ 					resolveQueue(queue);
/******/ 				}, (e) => {
/******/ 					obj[webpackError] = e;
/******/ 					resolveQueue(queue);
/******/ 				});
/******/ 				var obj = {};
/******/ 				obj[webpackQueues] = (fn) => (fn(queue));
/******/ 				return obj;
/******/ 			}
/******/ 		}
/******/ 		var ret = {};
/******/ 		ret[webpackQueues] = x => {};
/******/ 		ret[webpackExports] = dep;
/******/ 		return ret;
/******/ 	}));
/******/ 	__nccwpck_require__.a = (module, body, hasAwait) => {
/******/ 		var queue;
/******/ 		hasAwait && ((queue = []).d = -1);
/******/ 		var depQueues = new Set();
/******/ 		var exports = module.exports;
/******/ 		var currentDeps;
/******/ 		var outerResolve;
/******/ 		var reject;
/******/ 		var promise = new Promise((resolve, rej) => {
/******/ 			reject = rej;
/******/ 			outerResolve = resolve;
/******/ 		});
/******/ 		promise[webpackExports] = exports;
/******/ 		promise[webpackQueues] = (fn) => (queue && fn(queue), depQueues.forEach(fn), promise["catch"](x => {}));
/******/ 		module.exports = promise;
/******/ 		body((deps) => {
/******/ 			currentDeps = wrapDeps(deps);
/******/ 			var fn;
/******/ 			var getResult = () => (currentDeps.map((d) => {
/******/ 				if(d[webpackError]) throw d[webpackError];
/******/ 				return d[webpackExports];
/******/ 			}))
/******/ 			var promise = new Promise((resolve) => {
/******/ 				fn = () => (resolve(getResult));
/******/ 				fn.r = 0;
/******/ 				var fnQueue = (q) => (q !== queue && !depQueues.has(q) && (depQueues.add(q), q && !q.d && (fn.r++, q.push(fn))));
/******/ 				currentDeps.map((dep) => (dep[webpackQueues](fnQueue)));
/******/ 			});
/******/ 			return fn.r ? promise : getResult();
/******/ 		}, (err) => ((err ? reject(promise[webpackError] = err) : outerResolve(exports)), resolveQueue(queue)));
/******/ 		queue && queue.d < 0 && (queue.d = 0);
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/compat get default export */
/******/ (() => {
/******/ 	// getDefaultExport function for compatibility with non-harmony modules
/******/ 	__nccwpck_require__.n = (module) => {
/******/ 		var getter = module && module.__esModule ?
/******/ 			() => (module['default']) :
/******/ 			() => (module);
/******/ 		__nccwpck_require__.d(getter, { a: getter });
/******/ 		return getter;
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/define property getters */
/******/ (() => {
/******/ 	// define getter functions for harmony exports
/******/ 	__nccwpck_require__.d = (exports, definition) => {
/******/ 		for(var key in definition) {
/******/ 			if(__nccwpck_require__.o(definition, key) && !__nccwpck_require__.o(exports, key)) {
/******/ 				Object.defineProperty(exports, key, { enumerable: true, get: definition[key] });
/******/ 			}
/******/ 		}
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/hasOwnProperty shorthand */
/******/ (() => {
/******/ 	__nccwpck_require__.o = (obj, prop) => (Object.prototype.hasOwnProperty.call(obj, prop))
/******/ })();
/******/ 
/************************************************************************/
/******/ 
/******/ // startup
/******/ // Load entry module and return exports
/******/ // This entry module used 'module' so it can't be inlined
/******/ var __webpack_exports__ = __nccwpck_require__(7318);
/******/ __webpack_exports__ = await __webpack_exports__;
/******/ 
