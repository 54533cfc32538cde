#!/usr/bin/env node
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ var __webpack_modules__ = ({

/***/ 7750:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

module.exports = {
    RBTree: __nccwpck_require__(5004),
    BinTree: __nccwpck_require__(2663)
};


/***/ }),

/***/ 2663:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


var TreeBase = __nccwpck_require__(253);

function Node(data) {
    this.data = data;
    this.left = null;
    this.right = null;
}

Node.prototype.get_child = function(dir) {
    return dir ? this.right : this.left;
};

Node.prototype.set_child = function(dir, val) {
    if(dir) {
        this.right = val;
    }
    else {
        this.left = val;
    }
};

function BinTree(comparator) {
    this._root = null;
    this._comparator = comparator;
    this.size = 0;
}

BinTree.prototype = new TreeBase();

// returns true if inserted, false if duplicate
BinTree.prototype.insert = function(data) {
    if(this._root === null) {
        // empty tree
        this._root = new Node(data);
        this.size++;
        return true;
    }

    var dir = 0;

    // setup
    var p = null; // parent
    var node = this._root;

    // search down
    while(true) {
        if(node === null) {
            // insert new node at the bottom
            node = new Node(data);
            p.set_child(dir, node);
            ret = true;
            this.size++;
            return true;
        }

        // stop if found
        if(this._comparator(node.data, data) === 0) {
            return false;
        }

        dir = this._comparator(node.data, data) < 0;

        // update helpers
        p = node;
        node = node.get_child(dir);
    }
};

// returns true if removed, false if not found
BinTree.prototype.remove = function(data) {
    if(this._root === null) {
        return false;
    }

    var head = new Node(undefined); // fake tree root
    var node = head;
    node.right = this._root;
    var p = null; // parent
    var found = null; // found item
    var dir = 1;

    while(node.get_child(dir) !== null) {
        p = node;
        node = node.get_child(dir);
        var cmp = this._comparator(data, node.data);
        dir = cmp > 0;

        if(cmp === 0) {
            found = node;
        }
    }

    if(found !== null) {
        found.data = node.data;
        p.set_child(p.right === node, node.get_child(node.left === null));

        this._root = head.right;
        this.size--;
        return true;
    }
    else {
        return false;
    }
};

module.exports = BinTree;



/***/ }),

/***/ 5004:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


var TreeBase = __nccwpck_require__(253);

function Node(data) {
    this.data = data;
    this.left = null;
    this.right = null;
    this.red = true;
}

Node.prototype.get_child = function(dir) {
    return dir ? this.right : this.left;
};

Node.prototype.set_child = function(dir, val) {
    if(dir) {
        this.right = val;
    }
    else {
        this.left = val;
    }
};

function RBTree(comparator) {
    this._root = null;
    this._comparator = comparator;
    this.size = 0;
}

RBTree.prototype = new TreeBase();

// returns true if inserted, false if duplicate
RBTree.prototype.insert = function(data) {
    var ret = false;

    if(this._root === null) {
        // empty tree
        this._root = new Node(data);
        ret = true;
        this.size++;
    }
    else {
        var head = new Node(undefined); // fake tree root

        var dir = 0;
        var last = 0;

        // setup
        var gp = null; // grandparent
        var ggp = head; // grand-grand-parent
        var p = null; // parent
        var node = this._root;
        ggp.right = this._root;

        // search down
        while(true) {
            if(node === null) {
                // insert new node at the bottom
                node = new Node(data);
                p.set_child(dir, node);
                ret = true;
                this.size++;
            }
            else if(is_red(node.left) && is_red(node.right)) {
                // color flip
                node.red = true;
                node.left.red = false;
                node.right.red = false;
            }

            // fix red violation
            if(is_red(node) && is_red(p)) {
                var dir2 = ggp.right === gp;

                if(node === p.get_child(last)) {
                    ggp.set_child(dir2, single_rotate(gp, !last));
                }
                else {
                    ggp.set_child(dir2, double_rotate(gp, !last));
                }
            }

            var cmp = this._comparator(node.data, data);

            // stop if found
            if(cmp === 0) {
                break;
            }

            last = dir;
            dir = cmp < 0;

            // update helpers
            if(gp !== null) {
                ggp = gp;
            }
            gp = p;
            p = node;
            node = node.get_child(dir);
        }

        // update root
        this._root = head.right;
    }

    // make root black
    this._root.red = false;

    return ret;
};

// returns true if removed, false if not found
RBTree.prototype.remove = function(data) {
    if(this._root === null) {
        return false;
    }

    var head = new Node(undefined); // fake tree root
    var node = head;
    node.right = this._root;
    var p = null; // parent
    var gp = null; // grand parent
    var found = null; // found item
    var dir = 1;

    while(node.get_child(dir) !== null) {
        var last = dir;

        // update helpers
        gp = p;
        p = node;
        node = node.get_child(dir);

        var cmp = this._comparator(data, node.data);

        dir = cmp > 0;

        // save found node
        if(cmp === 0) {
            found = node;
        }

        // push the red node down
        if(!is_red(node) && !is_red(node.get_child(dir))) {
            if(is_red(node.get_child(!dir))) {
                var sr = single_rotate(node, dir);
                p.set_child(last, sr);
                p = sr;
            }
            else if(!is_red(node.get_child(!dir))) {
                var sibling = p.get_child(!last);
                if(sibling !== null) {
                    if(!is_red(sibling.get_child(!last)) && !is_red(sibling.get_child(last))) {
                        // color flip
                        p.red = false;
                        sibling.red = true;
                        node.red = true;
                    }
                    else {
                        var dir2 = gp.right === p;

                        if(is_red(sibling.get_child(last))) {
                            gp.set_child(dir2, double_rotate(p, last));
                        }
                        else if(is_red(sibling.get_child(!last))) {
                            gp.set_child(dir2, single_rotate(p, last));
                        }

                        // ensure correct coloring
                        var gpc = gp.get_child(dir2);
                        gpc.red = true;
                        node.red = true;
                        gpc.left.red = false;
                        gpc.right.red = false;
                    }
                }
            }
        }
    }

    // replace and remove if found
    if(found !== null) {
        found.data = node.data;
        p.set_child(p.right === node, node.get_child(node.left === null));
        this.size--;
    }

    // update root and make it black
    this._root = head.right;
    if(this._root !== null) {
        this._root.red = false;
    }

    return found !== null;
};

function is_red(node) {
    return node !== null && node.red;
}

function single_rotate(root, dir) {
    var save = root.get_child(!dir);

    root.set_child(!dir, save.get_child(dir));
    save.set_child(dir, root);

    root.red = true;
    save.red = false;

    return save;
}

function double_rotate(root, dir) {
    root.set_child(!dir, single_rotate(root.get_child(!dir), !dir));
    return single_rotate(root, dir);
}

module.exports = RBTree;


/***/ }),

/***/ 253:
/***/ ((module) => {


function TreeBase() {}

// removes all nodes from the tree
TreeBase.prototype.clear = function() {
    this._root = null;
    this.size = 0;
};

// returns node data if found, null otherwise
TreeBase.prototype.find = function(data) {
    var res = this._root;

    while(res !== null) {
        var c = this._comparator(data, res.data);
        if(c === 0) {
            return res.data;
        }
        else {
            res = res.get_child(c > 0);
        }
    }

    return null;
};

// returns iterator to node if found, null otherwise
TreeBase.prototype.findIter = function(data) {
    var res = this._root;
    var iter = this.iterator();

    while(res !== null) {
        var c = this._comparator(data, res.data);
        if(c === 0) {
            iter._cursor = res;
            return iter;
        }
        else {
            iter._ancestors.push(res);
            res = res.get_child(c > 0);
        }
    }

    return null;
};

// Returns an iterator to the tree node at or immediately after the item
TreeBase.prototype.lowerBound = function(item) {
    var cur = this._root;
    var iter = this.iterator();
    var cmp = this._comparator;

    while(cur !== null) {
        var c = cmp(item, cur.data);
        if(c === 0) {
            iter._cursor = cur;
            return iter;
        }
        iter._ancestors.push(cur);
        cur = cur.get_child(c > 0);
    }

    for(var i=iter._ancestors.length - 1; i >= 0; --i) {
        cur = iter._ancestors[i];
        if(cmp(item, cur.data) < 0) {
            iter._cursor = cur;
            iter._ancestors.length = i;
            return iter;
        }
    }

    iter._ancestors.length = 0;
    return iter;
};

// Returns an iterator to the tree node immediately after the item
TreeBase.prototype.upperBound = function(item) {
    var iter = this.lowerBound(item);
    var cmp = this._comparator;

    while(iter.data() !== null && cmp(iter.data(), item) === 0) {
        iter.next();
    }

    return iter;
};

// returns null if tree is empty
TreeBase.prototype.min = function() {
    var res = this._root;
    if(res === null) {
        return null;
    }

    while(res.left !== null) {
        res = res.left;
    }

    return res.data;
};

// returns null if tree is empty
TreeBase.prototype.max = function() {
    var res = this._root;
    if(res === null) {
        return null;
    }

    while(res.right !== null) {
        res = res.right;
    }

    return res.data;
};

// returns a null iterator
// call next() or prev() to point to an element
TreeBase.prototype.iterator = function() {
    return new Iterator(this);
};

// calls cb on each node's data, in order
TreeBase.prototype.each = function(cb) {
    var it=this.iterator(), data;
    while((data = it.next()) !== null) {
        if(cb(data) === false) {
            return;
        }
    }
};

// calls cb on each node's data, in reverse order
TreeBase.prototype.reach = function(cb) {
    var it=this.iterator(), data;
    while((data = it.prev()) !== null) {
        if(cb(data) === false) {
            return;
        }
    }
};


function Iterator(tree) {
    this._tree = tree;
    this._ancestors = [];
    this._cursor = null;
}

Iterator.prototype.data = function() {
    return this._cursor !== null ? this._cursor.data : null;
};

// if null-iterator, returns first node
// otherwise, returns next node
Iterator.prototype.next = function() {
    if(this._cursor === null) {
        var root = this._tree._root;
        if(root !== null) {
            this._minNode(root);
        }
    }
    else {
        if(this._cursor.right === null) {
            // no greater node in subtree, go up to parent
            // if coming from a right child, continue up the stack
            var save;
            do {
                save = this._cursor;
                if(this._ancestors.length) {
                    this._cursor = this._ancestors.pop();
                }
                else {
                    this._cursor = null;
                    break;
                }
            } while(this._cursor.right === save);
        }
        else {
            // get the next node from the subtree
            this._ancestors.push(this._cursor);
            this._minNode(this._cursor.right);
        }
    }
    return this._cursor !== null ? this._cursor.data : null;
};

// if null-iterator, returns last node
// otherwise, returns previous node
Iterator.prototype.prev = function() {
    if(this._cursor === null) {
        var root = this._tree._root;
        if(root !== null) {
            this._maxNode(root);
        }
    }
    else {
        if(this._cursor.left === null) {
            var save;
            do {
                save = this._cursor;
                if(this._ancestors.length) {
                    this._cursor = this._ancestors.pop();
                }
                else {
                    this._cursor = null;
                    break;
                }
            } while(this._cursor.left === save);
        }
        else {
            this._ancestors.push(this._cursor);
            this._maxNode(this._cursor.left);
        }
    }
    return this._cursor !== null ? this._cursor.data : null;
};

Iterator.prototype._minNode = function(start) {
    while(start.left !== null) {
        this._ancestors.push(start);
        start = start.left;
    }
    this._cursor = start;
};

Iterator.prototype._maxNode = function(start) {
    while(start.right !== null) {
        this._ancestors.push(start);
        start = start.right;
    }
    this._cursor = start;
};

module.exports = TreeBase;



/***/ }),

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

/***/ 5222:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

var __webpack_unused_export__;
/**
 * Prometheus client
 * @module Prometheus client
 */



exports.register = __nccwpck_require__(1627).globalRegistry;
exports.Registry = __nccwpck_require__(1627);
__webpack_unused_export__ = ({
	configurable: false,
	enumerable: true,
	get() {
		return exports.register.contentType;
	},
	set(value) {
		exports.register.setContentType(value);
	},
});
__webpack_unused_export__ = exports.Registry.PROMETHEUS_CONTENT_TYPE;
__webpack_unused_export__ = exports.Registry.OPENMETRICS_CONTENT_TYPE;
/* unused reexport */ __nccwpck_require__(1539).validateMetricName;

/* unused reexport */ __nccwpck_require__(8606);
exports.Gauge = __nccwpck_require__(7173);
/* unused reexport */ __nccwpck_require__(5416);
/* unused reexport */ __nccwpck_require__(5910);
exports.Pushgateway = __nccwpck_require__(7524);

/* unused reexport */ __nccwpck_require__(964);
/* unused reexport */ __nccwpck_require__(964);

/* unused reexport */ __nccwpck_require__(5106);

/* unused reexport */ __nccwpck_require__(5924).aggregators;
/* unused reexport */ __nccwpck_require__(816);


/***/ }),

/***/ 964:
/***/ ((__unused_webpack_module, exports) => {

var __webpack_unused_export__;


__webpack_unused_export__ = (start, width, count) => {
	if (count < 1) {
		throw new Error('Linear buckets needs a positive count');
	}

	const buckets = new Array(count);
	for (let i = 0; i < count; i++) {
		buckets[i] = start + i * width;
	}
	return buckets;
};

__webpack_unused_export__ = (start, factor, count) => {
	if (start <= 0) {
		throw new Error('Exponential buckets needs a positive start');
	}
	if (count < 1) {
		throw new Error('Exponential buckets needs a positive count');
	}
	if (factor <= 1) {
		throw new Error('Exponential buckets needs a factor greater than 1');
	}
	const buckets = new Array(count);
	for (let i = 0; i < count; i++) {
		buckets[i] = start;
		start *= factor;
	}
	return buckets;
};


/***/ }),

/***/ 816:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



/**
 * Extends the Registry class with a `clusterMetrics` method that returns
 * aggregated metrics for all workers.
 *
 * In cluster workers, listens for and responds to requests for metrics by the
 * cluster master.
 */

const Registry = __nccwpck_require__(1627);
const { Grouper } = __nccwpck_require__(9588);
const { aggregators } = __nccwpck_require__(5924);
// We need to lazy-load the 'cluster' module as some application servers -
// namely Passenger - crash when it is imported.
let cluster = () => {
	const data = __nccwpck_require__(9907);
	cluster = () => data;
	return data;
};

const GET_METRICS_REQ = 'prom-client:getMetricsReq';
const GET_METRICS_RES = 'prom-client:getMetricsRes';

let registries = [Registry.globalRegistry];
let requestCtr = 0; // Concurrency control
let listenersAdded = false;
const requests = new Map(); // Pending requests for workers' local metrics.

class AggregatorRegistry extends Registry {
	constructor(regContentType = Registry.PROMETHEUS_CONTENT_TYPE) {
		super(regContentType);
		addListeners();
	}

	/**
	 * Gets aggregated metrics for all workers. The optional callback and
	 * returned Promise resolve with the same value; either may be used.
	 * @return {Promise<string>} Promise that resolves with the aggregated
	 *   metrics.
	 */
	clusterMetrics() {
		const requestId = requestCtr++;

		return new Promise((resolve, reject) => {
			let settled = false;
			function done(err, result) {
				if (settled) return;
				settled = true;
				if (err) reject(err);
				else resolve(result);
			}

			const request = {
				responses: [],
				pending: 0,
				done,
				errorTimeout: setTimeout(() => {
					const err = new Error('Operation timed out.');
					request.done(err);
				}, 5000),
			};
			requests.set(requestId, request);

			const message = {
				type: GET_METRICS_REQ,
				requestId,
			};

			for (const id in cluster().workers) {
				// If the worker exits abruptly, it may still be in the workers
				// list but not able to communicate.
				if (cluster().workers[id].isConnected()) {
					cluster().workers[id].send(message);
					request.pending++;
				}
			}

			if (request.pending === 0) {
				// No workers were up
				clearTimeout(request.errorTimeout);
				process.nextTick(() => done(null, ''));
			}
		});
	}

	get contentType() {
		return super.contentType;
	}

	/**
	 * Creates a new Registry instance from an array of metrics that were
	 * created by `registry.getMetricsAsJSON()`. Metrics are aggregated using
	 * the method specified by their `aggregator` property, or by summation if
	 * `aggregator` is undefined.
	 * @param {Array} metricsArr Array of metrics, each of which created by
	 *   `registry.getMetricsAsJSON()`.
	 * @param {string} registryType content type of the new registry. Defaults
	 * to PROMETHEUS_CONTENT_TYPE.
	 * @return {Registry} aggregated registry.
	 */
	static aggregate(
		metricsArr,
		registryType = Registry.PROMETHEUS_CONTENT_TYPE,
	) {
		const aggregatedRegistry = new Registry();
		const metricsByName = new Grouper();

		aggregatedRegistry.setContentType(registryType);

		// Gather by name
		metricsArr.forEach(metrics => {
			metrics.forEach(metric => {
				metricsByName.add(metric.name, metric);
			});
		});

		// Aggregate gathered metrics.
		metricsByName.forEach(metrics => {
			const aggregatorName = metrics[0].aggregator;
			const aggregatorFn = aggregators[aggregatorName];
			if (typeof aggregatorFn !== 'function') {
				throw new Error(`'${aggregatorName}' is not a defined aggregator.`);
			}
			const aggregatedMetric = aggregatorFn(metrics);
			// NB: The 'omit' aggregator returns undefined.
			if (aggregatedMetric) {
				const aggregatedMetricWrapper = Object.assign(
					{
						get: () => aggregatedMetric,
					},
					aggregatedMetric,
				);
				aggregatedRegistry.registerMetric(aggregatedMetricWrapper);
			}
		});

		return aggregatedRegistry;
	}

	/**
	 * Sets the registry or registries to be aggregated. Call from workers to
	 * use a registry/registries other than the default global registry.
	 * @param {Array<Registry>|Registry} regs Registry or registries to be
	 *   aggregated.
	 * @return {void}
	 */
	static setRegistries(regs) {
		if (!Array.isArray(regs)) regs = [regs];
		regs.forEach(reg => {
			if (!(reg instanceof Registry)) {
				throw new TypeError(`Expected Registry, got ${typeof reg}`);
			}
		});
		registries = regs;
	}
}

/**
 * Adds event listeners for cluster aggregation. Idempotent (safe to call more
 * than once).
 * @return {void}
 */
function addListeners() {
	if (listenersAdded) return;
	listenersAdded = true;

	if (cluster().isMaster) {
		// Listen for worker responses to requests for local metrics
		cluster().on('message', (worker, message) => {
			if (message.type === GET_METRICS_RES) {
				const request = requests.get(message.requestId);

				if (message.error) {
					request.done(new Error(message.error));
					return;
				}

				message.metrics.forEach(registry => request.responses.push(registry));
				request.pending--;

				if (request.pending === 0) {
					// finalize
					requests.delete(message.requestId);
					clearTimeout(request.errorTimeout);

					const registry = AggregatorRegistry.aggregate(request.responses);
					const promString = registry.metrics();
					request.done(null, promString);
				}
			}
		});
	}

	if (cluster().isWorker) {
		// Respond to master's requests for worker's local metrics.
		process.on('message', message => {
			if (message.type === GET_METRICS_REQ) {
				Promise.all(registries.map(r => r.getMetricsAsJSON()))
					.then(metrics => {
						process.send({
							type: GET_METRICS_RES,
							requestId: message.requestId,
							metrics,
						});
					})
					.catch(error => {
						process.send({
							type: GET_METRICS_RES,
							requestId: message.requestId,
							error: error.message,
						});
					});
			}
		});
	}
}

module.exports = AggregatorRegistry;


/***/ }),

/***/ 8606:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

/**
 * Counter metric
 */


const util = __nccwpck_require__(9023);
const {
	hashObject,
	isObject,
	getLabels,
	removeLabels,
	nowTimestamp,
} = __nccwpck_require__(9588);
const { validateLabel } = __nccwpck_require__(1539);
const { Metric } = __nccwpck_require__(2476);
const Exemplar = __nccwpck_require__(9024);

class Counter extends Metric {
	constructor(config) {
		super(config);
		this.type = 'counter';
		this.defaultLabels = {};
		this.defaultValue = 1;
		this.defaultExemplarLabelSet = {};
		if (config.enableExemplars) {
			this.enableExemplars = true;
			this.inc = this.incWithExemplar;
		} else {
			this.inc = this.incWithoutExemplar;
		}
	}

	/**
	 * Increment counter
	 * @param {object} labels - What label you want to be incremented
	 * @param {Number} value - Value to increment, if omitted increment with 1
	 * @returns {object} results - object with information about the inc operation
	 * @returns {string} results.labelHash - hash representation of the labels
	 */
	incWithoutExemplar(labels, value) {
		let hash = '';
		if (isObject(labels)) {
			hash = hashObject(labels, this.sortedLabelNames);
			validateLabel(this.labelNames, labels);
		} else {
			value = labels;
			labels = {};
		}

		if (value && !Number.isFinite(value)) {
			throw new TypeError(`Value is not a valid number: ${util.format(value)}`);
		}
		if (value < 0) {
			throw new Error('It is not possible to decrease a counter');
		}

		if (value === null || value === undefined) value = 1;

		setValue(this.hashMap, value, labels, hash);

		return { labelHash: hash };
	}

	/**
	 * Increment counter with exemplar, same as inc but accepts labels for an
	 * exemplar.
	 * If no label is provided the current exemplar labels are kept unchanged
	 * (defaults to empty set).
	 *
	 * @param {object} incOpts - Object with options about what metric to increase
	 * @param {object} incOpts.labels - What label you want to be incremented,
	 *                                  defaults to null (metric with no labels)
	 * @param {Number} incOpts.value - Value to increment, defaults to 1
	 * @param {object} incOpts.exemplarLabels - Key-value  labels for the
	 *                                          exemplar, defaults to empty set {}
	 * @returns {void}
	 */
	incWithExemplar({
		labels = this.defaultLabels,
		value = this.defaultValue,
		exemplarLabels = this.defaultExemplarLabelSet,
	} = {}) {
		const res = this.incWithoutExemplar(labels, value);
		this.updateExemplar(exemplarLabels, value, res.labelHash);
	}

	updateExemplar(exemplarLabels, value, hash) {
		if (exemplarLabels === this.defaultExemplarLabelSet) return;
		if (!isObject(this.hashMap[hash].exemplar)) {
			this.hashMap[hash].exemplar = new Exemplar();
		}
		this.hashMap[hash].exemplar.validateExemplarLabelSet(exemplarLabels);
		this.hashMap[hash].exemplar.labelSet = exemplarLabels;
		this.hashMap[hash].exemplar.value = value ? value : 1;
		this.hashMap[hash].exemplar.timestamp = nowTimestamp();
	}

	/**
	 * Reset counter
	 * @returns {void}
	 */
	reset() {
		this.hashMap = {};
		if (this.labelNames.length === 0) {
			setValue(this.hashMap, 0);
		}
	}

	async get() {
		if (this.collect) {
			const v = this.collect();
			if (v instanceof Promise) await v;
		}

		return {
			help: this.help,
			name: this.name,
			type: this.type,
			values: Object.values(this.hashMap),
			aggregator: this.aggregator,
		};
	}

	labels(...args) {
		const labels = getLabels(this.labelNames, args) || {};
		return {
			inc: this.inc.bind(this, labels),
		};
	}

	remove(...args) {
		const labels = getLabels(this.labelNames, args) || {};
		validateLabel(this.labelNames, labels);
		return removeLabels.call(this, this.hashMap, labels, this.sortedLabelNames);
	}
}

function setValue(hashMap, value, labels = {}, hash = '') {
	if (hashMap[hash]) {
		hashMap[hash].value += value;
	} else {
		hashMap[hash] = { value, labels };
	}
	return hashMap;
}

module.exports = Counter;


/***/ }),

/***/ 5106:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const { isObject } = __nccwpck_require__(9588);

// Default metrics.
const processCpuTotal = __nccwpck_require__(8293);
const processStartTime = __nccwpck_require__(8228);
const osMemoryHeap = __nccwpck_require__(3981);
const processOpenFileDescriptors = __nccwpck_require__(5217);
const processMaxFileDescriptors = __nccwpck_require__(9655);
const eventLoopLag = __nccwpck_require__(4460);
const processHandles = __nccwpck_require__(5490);
const processRequests = __nccwpck_require__(7439);
const processResources = __nccwpck_require__(884);
const heapSizeAndUsed = __nccwpck_require__(2365);
const heapSpacesSizeAndUsed = __nccwpck_require__(3844);
const version = __nccwpck_require__(3344);
const gc = __nccwpck_require__(9336);

const metrics = {
	processCpuTotal,
	processStartTime,
	osMemoryHeap,
	processOpenFileDescriptors,
	processMaxFileDescriptors,
	eventLoopLag,
	...(typeof process.getActiveResourcesInfo === 'function'
		? { processResources }
		: {}),
	processHandles,
	processRequests,
	heapSizeAndUsed,
	heapSpacesSizeAndUsed,
	version,
	gc,
};
const metricsList = Object.keys(metrics);

module.exports = function collectDefaultMetrics(config) {
	if (config !== null && config !== undefined && !isObject(config)) {
		throw new TypeError('config must be null, undefined, or an object');
	}

	config = { eventLoopMonitoringPrecision: 10, ...config };

	for (const metric of Object.values(metrics)) {
		metric(config.register, config);
	}
};

module.exports.metricsList = metricsList;


/***/ }),

/***/ 9024:
/***/ ((module) => {



/**
 * Class representing an OpenMetrics exemplar.
 *
 * @property {object} labelSet
 * @property {number} value
 * @property {number} [timestamp]
 * */
class Exemplar {
	constructor(labelSet = {}, value = null) {
		this.labelSet = labelSet;
		this.value = value;
	}

	/**
	 * Validation for the label set format.
	 * https://github.com/OpenObservability/OpenMetrics/blob/d99b705f611b75fec8f450b05e344e02eea6921d/specification/OpenMetrics.md#exemplars
	 *
	 * @param {object} labelSet - Exemplar labels.
	 * @throws {RangeError}
	 * @return {void}
	 */
	validateExemplarLabelSet(labelSet) {
		let res = '';
		for (const [labelName, labelValue] of Object.entries(labelSet)) {
			res += `${labelName}${labelValue}`;
		}
		if (res.length > 128) {
			throw new RangeError(
				'Label set size must be smaller than 128 UTF-8 chars',
			);
		}
	}
}

module.exports = Exemplar;


/***/ }),

/***/ 7173:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

/**
 * Gauge metric
 */


const util = __nccwpck_require__(9023);

const {
	setValue,
	setValueDelta,
	getLabels,
	hashObject,
	isObject,
	removeLabels,
} = __nccwpck_require__(9588);
const { validateLabel } = __nccwpck_require__(1539);
const { Metric } = __nccwpck_require__(2476);

class Gauge extends Metric {
	constructor(config) {
		super(config);
		this.type = 'gauge';
	}

	/**
	 * Set a gauge to a value
	 * @param {object} labels - Object with labels and their values
	 * @param {Number} value - Value to set the gauge to, must be positive
	 * @returns {void}
	 */
	set(labels, value) {
		value = getValueArg(labels, value);
		labels = getLabelArg(labels);
		set(this, labels, value);
	}

	/**
	 * Reset gauge
	 * @returns {void}
	 */
	reset() {
		this.hashMap = {};
		if (this.labelNames.length === 0) {
			setValue(this.hashMap, 0, {});
		}
	}

	/**
	 * Increment a gauge value
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @param {Number} value - Value to increment - if omitted, increment with 1
	 * @returns {void}
	 */
	inc(labels, value) {
		value = getValueArg(labels, value);
		labels = getLabelArg(labels);
		if (value === undefined) value = 1;
		setDelta(this, labels, value);
	}

	/**
	 * Decrement a gauge value
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @param {Number} value - Value to decrement - if omitted, decrement with 1
	 * @returns {void}
	 */
	dec(labels, value) {
		value = getValueArg(labels, value);
		labels = getLabelArg(labels);
		if (value === undefined) value = 1;
		setDelta(this, labels, -value);
	}

	/**
	 * Set the gauge to current unix epoch
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @returns {void}
	 */
	setToCurrentTime(labels) {
		const now = Date.now() / 1000;
		if (labels === undefined) {
			this.set(now);
		} else {
			this.set(labels, now);
		}
	}

	/**
	 * Start a timer
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @returns {function} - Invoke this function to set the duration in seconds since you started the timer.
	 * @example
	 * var done = gauge.startTimer();
	 * makeXHRRequest(function(err, response) {
	 *	done(); //Duration of the request will be saved
	 * });
	 */
	startTimer(labels) {
		const start = process.hrtime();
		return endLabels => {
			const delta = process.hrtime(start);
			const value = delta[0] + delta[1] / 1e9;
			this.set(Object.assign({}, labels, endLabels), value);
			return value;
		};
	}

	async get() {
		if (this.collect) {
			const v = this.collect();
			if (v instanceof Promise) await v;
		}
		return {
			help: this.help,
			name: this.name,
			type: this.type,
			values: Object.values(this.hashMap),
			aggregator: this.aggregator,
		};
	}

	_getValue(labels) {
		const hash = hashObject(labels || {}, this.sortedLabelNames);
		return this.hashMap[hash] ? this.hashMap[hash].value : 0;
	}

	labels(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		return {
			inc: this.inc.bind(this, labels),
			dec: this.dec.bind(this, labels),
			set: this.set.bind(this, labels),
			setToCurrentTime: this.setToCurrentTime.bind(this, labels),
			startTimer: this.startTimer.bind(this, labels),
		};
	}

	remove(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		removeLabels.call(this, this.hashMap, labels, this.sortedLabelNames);
	}
}

function set(gauge, labels, value) {
	if (typeof value !== 'number') {
		throw new TypeError(`Value is not a valid number: ${util.format(value)}`);
	}

	validateLabel(gauge.labelNames, labels);
	setValue(gauge.hashMap, value, labels);
}

function setDelta(gauge, labels, delta) {
	if (typeof delta !== 'number') {
		throw new TypeError(`Delta is not a valid number: ${util.format(delta)}`);
	}

	validateLabel(gauge.labelNames, labels);
	const hash = hashObject(labels, gauge.sortedLabelNames);
	setValueDelta(gauge.hashMap, delta, labels, hash);
}

function getLabelArg(labels) {
	return isObject(labels) ? labels : {};
}

function getValueArg(labels, value) {
	return isObject(labels) ? value : labels;
}

module.exports = Gauge;


/***/ }),

/***/ 5416:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

/**
 * Histogram
 */


const util = __nccwpck_require__(9023);
const {
	getLabels,
	hashObject,
	isObject,
	removeLabels,
	nowTimestamp,
} = __nccwpck_require__(9588);
const { validateLabel } = __nccwpck_require__(1539);
const { Metric } = __nccwpck_require__(2476);
const Exemplar = __nccwpck_require__(9024);

class Histogram extends Metric {
	constructor(config) {
		super(config, {
			buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
		});

		this.type = 'histogram';
		this.defaultLabels = {};
		this.defaultExemplarLabelSet = {};
		this.enableExemplars = false;

		for (const label of this.labelNames) {
			if (label === 'le') {
				throw new Error('le is a reserved label keyword');
			}
		}

		this.upperBounds = this.buckets;
		this.bucketValues = this.upperBounds.reduce((acc, upperBound) => {
			acc[upperBound] = 0;
			return acc;
		}, {});

		if (config.enableExemplars) {
			this.enableExemplars = true;
			this.bucketExemplars = this.upperBounds.reduce((acc, upperBound) => {
				acc[upperBound] = null;
				return acc;
			}, {});
			Object.freeze(this.bucketExemplars);
			this.observe = this.observeWithExemplar;
		} else {
			this.observe = this.observeWithoutExemplar;
		}

		Object.freeze(this.bucketValues);
		Object.freeze(this.upperBounds);

		if (this.labelNames.length === 0) {
			this.hashMap = {
				[hashObject({})]: createBaseValues(
					{},
					this.bucketValues,
					this.bucketExemplars,
				),
			};
		}
	}

	/**
	 * Observe a value in histogram
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @param {Number} value - Value to observe in the histogram
	 * @returns {void}
	 */
	observeWithoutExemplar(labels, value) {
		observe.call(this, labels === 0 ? 0 : labels || {})(value);
	}

	observeWithExemplar({
		labels = this.defaultLabels,
		value,
		exemplarLabels = this.defaultExemplarLabelSet,
	} = {}) {
		observe.call(this, labels === 0 ? 0 : labels || {})(value);
		this.updateExemplar(labels, value, exemplarLabels);
	}

	updateExemplar(labels, value, exemplarLabels) {
		if (Object.keys(exemplarLabels).length === 0) return;
		const hash = hashObject(labels, this.sortedLabelNames);
		const bound = findBound(this.upperBounds, value);
		const { bucketExemplars } = this.hashMap[hash];
		let exemplar = bucketExemplars[bound];
		if (!isObject(exemplar)) {
			exemplar = new Exemplar();
			bucketExemplars[bound] = exemplar;
		}
		exemplar.validateExemplarLabelSet(exemplarLabels);
		exemplar.labelSet = exemplarLabels;
		exemplar.value = value;
		exemplar.timestamp = nowTimestamp();
	}

	async get() {
		const data = await this.getForPromString();
		data.values = data.values.map(splayLabels);
		return data;
	}

	async getForPromString() {
		if (this.collect) {
			const v = this.collect();
			if (v instanceof Promise) await v;
		}
		const data = Object.values(this.hashMap);
		const values = data
			.map(extractBucketValuesForExport(this))
			.reduce(addSumAndCountForExport(this), []);

		return {
			name: this.name,
			help: this.help,
			type: this.type,
			values,
			aggregator: this.aggregator,
		};
	}

	reset() {
		this.hashMap = {};
	}

	/**
	 * Initialize the metrics for the given combination of labels to zero
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @returns {void}
	 */
	zero(labels) {
		const hash = hashObject(labels, this.sortedLabelNames);
		this.hashMap[hash] = createBaseValues(
			labels,
			this.bucketValues,
			this.bucketExemplars,
		);
	}

	/**
	 * Start a timer that could be used to logging durations
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @param {object} exemplarLabels - Object with labels for exemplar where key is the label key and value is label value. Can only be one level deep
	 * @returns {function} - Function to invoke when you want to stop the timer and observe the duration in seconds
	 * @example
	 * var end = histogram.startTimer();
	 * makeExpensiveXHRRequest(function(err, res) {
	 * 	const duration = end(); //Observe the duration of expensiveXHRRequest and returns duration in seconds
	 * 	console.log('Duration', duration);
	 * });
	 */
	startTimer(labels, exemplarLabels) {
		return this.enableExemplars
			? startTimerWithExemplar.call(this, labels, exemplarLabels)()
			: startTimer.call(this, labels)();
	}

	labels(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		return {
			observe: observe.call(this, labels),
			startTimer: startTimer.call(this, labels),
		};
	}

	remove(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		removeLabels.call(this, this.hashMap, labels, this.sortedLabelNames);
	}
}

function startTimer(startLabels) {
	return () => {
		const start = process.hrtime();
		return endLabels => {
			const delta = process.hrtime(start);
			const value = delta[0] + delta[1] / 1e9;
			this.observe(Object.assign({}, startLabels, endLabels), value);
			return value;
		};
	};
}

function startTimerWithExemplar(startLabels, startExemplarLabels) {
	return () => {
		const start = process.hrtime();
		return (endLabels, endExemplarLabels) => {
			const delta = process.hrtime(start);
			const value = delta[0] + delta[1] / 1e9;
			this.observe({
				labels: Object.assign({}, startLabels, endLabels),
				value,
				exemplarLabels: Object.assign(
					{},
					startExemplarLabels,
					endExemplarLabels,
				),
			});
			return value;
		};
	};
}

function setValuePair(labels, value, metricName, exemplar, sharedLabels = {}) {
	return {
		labels,
		sharedLabels,
		value,
		metricName,
		exemplar,
	};
}

function findBound(upperBounds, value) {
	for (let i = 0; i < upperBounds.length; i++) {
		const bound = upperBounds[i];
		if (value <= bound) {
			return bound;
		}
	}
	return -1;
}

function observe(labels) {
	return value => {
		const labelValuePair = convertLabelsAndValues(labels, value);

		validateLabel(this.labelNames, labelValuePair.labels);
		if (!Number.isFinite(labelValuePair.value)) {
			throw new TypeError(
				`Value is not a valid number: ${util.format(labelValuePair.value)}`,
			);
		}

		const hash = hashObject(labelValuePair.labels, this.sortedLabelNames);
		let valueFromMap = this.hashMap[hash];
		if (!valueFromMap) {
			valueFromMap = createBaseValues(
				labelValuePair.labels,
				this.bucketValues,
				this.bucketExemplars,
			);
		}

		const b = findBound(this.upperBounds, labelValuePair.value);

		valueFromMap.sum += labelValuePair.value;
		valueFromMap.count += 1;

		if (Object.prototype.hasOwnProperty.call(valueFromMap.bucketValues, b)) {
			valueFromMap.bucketValues[b] += 1;
		}

		this.hashMap[hash] = valueFromMap;
	};
}

function createBaseValues(labels, bucketValues, bucketExemplars) {
	const result = {
		labels,
		bucketValues: { ...bucketValues },
		sum: 0,
		count: 0,
	};
	if (bucketExemplars) {
		result.bucketExemplars = { ...bucketExemplars };
	}
	return result;
}

function convertLabelsAndValues(labels, value) {
	return isObject(labels)
		? {
				labels,
				value,
			}
		: {
				value: labels,
				labels: {},
			};
}

function extractBucketValuesForExport(histogram) {
	const name = `${histogram.name}_bucket`;
	return bucketData => {
		let acc = 0;
		const buckets = histogram.upperBounds.map(upperBound => {
			acc += bucketData.bucketValues[upperBound];
			return setValuePair(
				{ le: upperBound },
				acc,
				name,
				bucketData.bucketExemplars
					? bucketData.bucketExemplars[upperBound]
					: null,
				bucketData.labels,
			);
		});
		return { buckets, data: bucketData };
	};
}

function addSumAndCountForExport(histogram) {
	return (acc, d) => {
		acc.push(...d.buckets);

		const infLabel = { le: '+Inf' };
		acc.push(
			setValuePair(
				infLabel,
				d.data.count,
				`${histogram.name}_bucket`,
				d.data.bucketExemplars ? d.data.bucketExemplars['-1'] : null,
				d.data.labels,
			),
			setValuePair(
				{},
				d.data.sum,
				`${histogram.name}_sum`,
				undefined,
				d.data.labels,
			),
			setValuePair(
				{},
				d.data.count,
				`${histogram.name}_count`,
				undefined,
				d.data.labels,
			),
		);
		return acc;
	};
}

function splayLabels(bucket) {
	const { sharedLabels, labels, ...newBucket } = bucket;
	for (const label of Object.keys(sharedLabels)) {
		labels[label] = sharedLabels[label];
	}
	newBucket.labels = labels;
	return newBucket;
}

module.exports = Histogram;


/***/ }),

/***/ 2476:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Registry = __nccwpck_require__(1627);
const { isObject } = __nccwpck_require__(9588);
const { validateMetricName, validateLabelName } = __nccwpck_require__(1539);

/**
 * @abstract
 */
class Metric {
	constructor(config, defaults = {}) {
		if (!isObject(config)) {
			throw new TypeError('constructor expected a config object');
		}
		Object.assign(
			this,
			{
				labelNames: [],
				registers: [Registry.globalRegistry],
				aggregator: 'sum',
				enableExemplars: false,
			},
			defaults,
			config,
		);
		if (!this.registers) {
			// in case config.registers is `undefined`
			this.registers = [Registry.globalRegistry];
		}
		if (!this.help) {
			throw new Error('Missing mandatory help parameter');
		}
		if (!this.name) {
			throw new Error('Missing mandatory name parameter');
		}
		if (!validateMetricName(this.name)) {
			throw new Error('Invalid metric name');
		}
		if (!validateLabelName(this.labelNames)) {
			throw new Error('Invalid label name');
		}

		if (this.collect && typeof this.collect !== 'function') {
			throw new Error('Optional "collect" parameter must be a function');
		}

		if (this.labelNames) {
			this.sortedLabelNames = [...this.labelNames].sort();
		} else {
			this.sortedLabelNames = [];
		}

		this.reset();

		for (const register of this.registers) {
			if (
				this.enableExemplars &&
				register.contentType === Registry.PROMETHEUS_CONTENT_TYPE
			) {
				throw new TypeError(
					'Exemplars are supported only on OpenMetrics registries',
				);
			}
			register.registerMetric(this);
		}
	}

	reset() {
		/* abstract */
	}
}

module.exports = { Metric };


/***/ }),

/***/ 5924:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {



const { Grouper, hashObject } = __nccwpck_require__(9588);

/**
 * Returns a new function that applies the `aggregatorFn` to the values.
 * @param {Function} aggregatorFn function to apply to values.
 * @return {Function} aggregator function
 */
function AggregatorFactory(aggregatorFn) {
	return metrics => {
		if (metrics.length === 0) return;
		const result = {
			help: metrics[0].help,
			name: metrics[0].name,
			type: metrics[0].type,
			values: [],
			aggregator: metrics[0].aggregator,
		};
		// Gather metrics by metricName and labels.
		const byLabels = new Grouper();
		metrics.forEach(metric => {
			metric.values.forEach(value => {
				const key = hashObject(value.labels);
				byLabels.add(`${value.metricName}_${key}`, value);
			});
		});
		// Apply aggregator function to gathered metrics.
		byLabels.forEach(values => {
			if (values.length === 0) return;
			const valObj = {
				value: aggregatorFn(values),
				labels: values[0].labels,
			};
			if (values[0].metricName) {
				valObj.metricName = values[0].metricName;
			}
			// NB: Timestamps are omitted.
			result.values.push(valObj);
		});
		return result;
	};
}
// Export for users to define their own aggregation methods.
exports.AggregatorFactory = AggregatorFactory;

/**
 * Functions that can be used to aggregate metrics from multiple registries.
 */
exports.aggregators = {
	/**
	 * @return The sum of values.
	 */
	sum: AggregatorFactory(v => v.reduce((p, c) => p + c.value, 0)),
	/**
	 * @return The first value.
	 */
	first: AggregatorFactory(v => v[0].value),
	/**
	 * @return {undefined} Undefined; omits the metric.
	 */
	omit: () => {},
	/**
	 * @return The arithmetic mean of the values.
	 */
	average: AggregatorFactory(
		v => v.reduce((p, c) => p + c.value, 0) / v.length,
	),
	/**
	 * @return The minimum of the values.
	 */
	min: AggregatorFactory(v =>
		v.reduce((p, c) => Math.min(p, c.value), Infinity),
	),
	/**
	 * @return The maximum of the values.
	 */
	max: AggregatorFactory(v =>
		v.reduce((p, c) => Math.max(p, c.value), -Infinity),
	),
};


/***/ }),

/***/ 4460:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);

// Check if perf_hooks module is available
let perf_hooks;
try {
	perf_hooks = __nccwpck_require__(2987);
} catch {
	// node version is too old
}

// Reported always.
const NODEJS_EVENTLOOP_LAG = 'nodejs_eventloop_lag_seconds';

// Reported only when perf_hooks is available.
const NODEJS_EVENTLOOP_LAG_MIN = 'nodejs_eventloop_lag_min_seconds';
const NODEJS_EVENTLOOP_LAG_MAX = 'nodejs_eventloop_lag_max_seconds';
const NODEJS_EVENTLOOP_LAG_MEAN = 'nodejs_eventloop_lag_mean_seconds';
const NODEJS_EVENTLOOP_LAG_STDDEV = 'nodejs_eventloop_lag_stddev_seconds';
const NODEJS_EVENTLOOP_LAG_P50 = 'nodejs_eventloop_lag_p50_seconds';
const NODEJS_EVENTLOOP_LAG_P90 = 'nodejs_eventloop_lag_p90_seconds';
const NODEJS_EVENTLOOP_LAG_P99 = 'nodejs_eventloop_lag_p99_seconds';

function reportEventloopLag(start, gauge, labels) {
	const delta = process.hrtime(start);
	const nanosec = delta[0] * 1e9 + delta[1];
	const seconds = nanosec / 1e9;

	gauge.set(labels, seconds);
}

module.exports = (registry, config = {}) => {
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);
	const registers = registry ? [registry] : undefined;

	let collect = () => {
		const start = process.hrtime();
		setImmediate(reportEventloopLag, start, lag, labels);
	};

	if (perf_hooks && perf_hooks.monitorEventLoopDelay) {
		try {
			const histogram = perf_hooks.monitorEventLoopDelay({
				resolution: config.eventLoopMonitoringPrecision,
			});
			histogram.enable();

			collect = () => {
				const start = process.hrtime();
				setImmediate(reportEventloopLag, start, lag, labels);

				lagMin.set(labels, histogram.min / 1e9);
				lagMax.set(labels, histogram.max / 1e9);
				lagMean.set(labels, histogram.mean / 1e9);
				lagStddev.set(labels, histogram.stddev / 1e9);
				lagP50.set(labels, histogram.percentile(50) / 1e9);
				lagP90.set(labels, histogram.percentile(90) / 1e9);
				lagP99.set(labels, histogram.percentile(99) / 1e9);

				histogram.reset();
			};
		} catch (e) {
			if (e.code === 'ERR_NOT_IMPLEMENTED') {
				return; // Bun
			}

			throw e;
		}
	}

	const lag = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG,
		help: 'Lag of event loop in seconds.',
		registers,
		labelNames,
		aggregator: 'average',
		// Use this one metric's `collect` to set all metrics' values.
		collect,
	});
	const lagMin = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_MIN,
		help: 'The minimum recorded event loop delay.',
		registers,
		labelNames,
		aggregator: 'min',
	});
	const lagMax = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_MAX,
		help: 'The maximum recorded event loop delay.',
		registers,
		labelNames,
		aggregator: 'max',
	});
	const lagMean = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_MEAN,
		help: 'The mean of the recorded event loop delays.',
		registers,
		labelNames,
		aggregator: 'average',
	});
	const lagStddev = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_STDDEV,
		help: 'The standard deviation of the recorded event loop delays.',
		registers,
		labelNames,
		aggregator: 'average',
	});
	const lagP50 = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_P50,
		help: 'The 50th percentile of the recorded event loop delays.',
		registers,
		labelNames,
		aggregator: 'average',
	});
	const lagP90 = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_P90,
		help: 'The 90th percentile of the recorded event loop delays.',
		registers,
		labelNames,
		aggregator: 'average',
	});
	const lagP99 = new Gauge({
		name: namePrefix + NODEJS_EVENTLOOP_LAG_P99,
		help: 'The 99th percentile of the recorded event loop delays.',
		registers,
		labelNames,
		aggregator: 'average',
	});
};

module.exports.metricNames = [
	NODEJS_EVENTLOOP_LAG,
	NODEJS_EVENTLOOP_LAG_MIN,
	NODEJS_EVENTLOOP_LAG_MAX,
	NODEJS_EVENTLOOP_LAG_MEAN,
	NODEJS_EVENTLOOP_LAG_STDDEV,
	NODEJS_EVENTLOOP_LAG_P50,
	NODEJS_EVENTLOOP_LAG_P90,
	NODEJS_EVENTLOOP_LAG_P99,
];


/***/ }),

/***/ 9336:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


const Histogram = __nccwpck_require__(5416);

let perf_hooks;

try {
	// eslint-disable-next-line
	perf_hooks = __nccwpck_require__(2987);
} catch {
	// node version is too old
}

const NODEJS_GC_DURATION_SECONDS = 'nodejs_gc_duration_seconds';
const DEFAULT_GC_DURATION_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

const kinds = [];

if (perf_hooks && perf_hooks.constants) {
	kinds[perf_hooks.constants.NODE_PERFORMANCE_GC_MAJOR] = 'major';
	kinds[perf_hooks.constants.NODE_PERFORMANCE_GC_MINOR] = 'minor';
	kinds[perf_hooks.constants.NODE_PERFORMANCE_GC_INCREMENTAL] = 'incremental';
	kinds[perf_hooks.constants.NODE_PERFORMANCE_GC_WEAKCB] = 'weakcb';
}

module.exports = (registry, config = {}) => {
	if (!perf_hooks) {
		return;
	}

	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);
	const buckets = config.gcDurationBuckets
		? config.gcDurationBuckets
		: DEFAULT_GC_DURATION_BUCKETS;
	const gcHistogram = new Histogram({
		name: namePrefix + NODEJS_GC_DURATION_SECONDS,
		help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
		labelNames: ['kind', ...labelNames],
		enableExemplars: false,
		buckets,
		registers: registry ? [registry] : undefined,
	});

	const obs = new perf_hooks.PerformanceObserver(list => {
		const entry = list.getEntries()[0];
		// Node < 16 uses entry.kind
		// Node >= 16 uses entry.detail.kind
		// See: https://nodejs.org/docs/latest-v16.x/api/deprecations.html#deprecations_dep0152_extension_performanceentry_properties
		const kind = entry.detail ? kinds[entry.detail.kind] : kinds[entry.kind];
		// Convert duration from milliseconds to seconds
		gcHistogram.observe(Object.assign({ kind }, labels), entry.duration / 1000);
	});

	obs.observe({ entryTypes: ['gc'] });
};

module.exports.metricNames = [NODEJS_GC_DURATION_SECONDS];


/***/ }),

/***/ 2365:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const safeMemoryUsage = __nccwpck_require__(1315);

const NODEJS_HEAP_SIZE_TOTAL = 'nodejs_heap_size_total_bytes';
const NODEJS_HEAP_SIZE_USED = 'nodejs_heap_size_used_bytes';
const NODEJS_EXTERNAL_MEMORY = 'nodejs_external_memory_bytes';

module.exports = (registry, config = {}) => {
	if (typeof process.memoryUsage !== 'function') {
		return;
	}
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	const registers = registry ? [registry] : undefined;
	const namePrefix = config.prefix ? config.prefix : '';
	const collect = () => {
		const memUsage = safeMemoryUsage();
		if (memUsage) {
			heapSizeTotal.set(labels, memUsage.heapTotal);
			heapSizeUsed.set(labels, memUsage.heapUsed);
			if (memUsage.external !== undefined) {
				externalMemUsed.set(labels, memUsage.external);
			}
		}
	};

	const heapSizeTotal = new Gauge({
		name: namePrefix + NODEJS_HEAP_SIZE_TOTAL,
		help: 'Process heap size from Node.js in bytes.',
		registers,
		labelNames,
		// Use this one metric's `collect` to set all metrics' values.
		collect,
	});
	const heapSizeUsed = new Gauge({
		name: namePrefix + NODEJS_HEAP_SIZE_USED,
		help: 'Process heap size used from Node.js in bytes.',
		registers,
		labelNames,
	});
	const externalMemUsed = new Gauge({
		name: namePrefix + NODEJS_EXTERNAL_MEMORY,
		help: 'Node.js external memory size in bytes.',
		registers,
		labelNames,
	});
};

module.exports.metricNames = [
	NODEJS_HEAP_SIZE_TOTAL,
	NODEJS_HEAP_SIZE_USED,
	NODEJS_EXTERNAL_MEMORY,
];


/***/ }),

/***/ 3844:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const v8 = __nccwpck_require__(1493);

const METRICS = ['total', 'used', 'available'];
const NODEJS_HEAP_SIZE = {};

METRICS.forEach(metricType => {
	NODEJS_HEAP_SIZE[metricType] = `nodejs_heap_space_size_${metricType}_bytes`;
});

module.exports = (registry, config = {}) => {
	try {
		v8.getHeapSpaceStatistics();
	} catch (e) {
		if (e.code === 'ERR_NOT_IMPLEMENTED') {
			return; // Bun
		}
		throw e;
	}
	const registers = registry ? [registry] : undefined;
	const namePrefix = config.prefix ? config.prefix : '';

	const labels = config.labels ? config.labels : {};
	const labelNames = ['space', ...Object.keys(labels)];

	const gauges = {};

	METRICS.forEach(metricType => {
		gauges[metricType] = new Gauge({
			name: namePrefix + NODEJS_HEAP_SIZE[metricType],
			help: `Process heap space size ${metricType} from Node.js in bytes.`,
			labelNames,
			registers,
		});
	});

	// Use this one metric's `collect` to set all metrics' values.
	gauges.total.collect = () => {
		for (const space of v8.getHeapSpaceStatistics()) {
			const spaceName = space.space_name.substr(
				0,
				space.space_name.indexOf('_space'),
			);

			gauges.total.set({ space: spaceName, ...labels }, space.space_size);
			gauges.used.set({ space: spaceName, ...labels }, space.space_used_size);
			gauges.available.set(
				{ space: spaceName, ...labels },
				space.space_available_size,
			);
		}
	};
};

module.exports.metricNames = Object.values(NODEJS_HEAP_SIZE);


/***/ }),

/***/ 7965:
/***/ ((module) => {



function aggregateByObjectName(list) {
	const data = {};

	for (let i = 0; i < list.length; i++) {
		const listElement = list[i];

		if (!listElement || typeof listElement.constructor === 'undefined') {
			continue;
		}

		if (Object.hasOwnProperty.call(data, listElement.constructor.name)) {
			data[listElement.constructor.name] += 1;
		} else {
			data[listElement.constructor.name] = 1;
		}
	}
	return data;
}

function updateMetrics(gauge, data, labels) {
	gauge.reset();
	for (const key in data) {
		gauge.set(Object.assign({ type: key }, labels || {}), data[key]);
	}
}

module.exports = {
	aggregateByObjectName,
	updateMetrics,
};


/***/ }),

/***/ 1315:
/***/ ((module) => {



// process.memoryUsage() can throw on some platforms, see #67
function safeMemoryUsage() {
	try {
		return process.memoryUsage();
	} catch {
		return;
	}
}

module.exports = safeMemoryUsage;


/***/ }),

/***/ 3981:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const linuxVariant = __nccwpck_require__(7567);
const safeMemoryUsage = __nccwpck_require__(1315);

const PROCESS_RESIDENT_MEMORY = 'process_resident_memory_bytes';

function notLinuxVariant(registry, config = {}) {
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + PROCESS_RESIDENT_MEMORY,
		help: 'Resident memory size in bytes.',
		registers: registry ? [registry] : undefined,
		labelNames,
		collect() {
			const memUsage = safeMemoryUsage();

			// I don't think the other things returned from `process.memoryUsage()` is relevant to a standard export
			if (memUsage) {
				this.set(labels, memUsage.rss);
			}
		},
	});
}

module.exports = (registry, config) =>
	process.platform === 'linux'
		? linuxVariant(registry, config)
		: notLinuxVariant(registry, config);

module.exports.metricNames =
	process.platform === 'linux'
		? linuxVariant.metricNames
		: [PROCESS_RESIDENT_MEMORY];


/***/ }),

/***/ 7567:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const fs = __nccwpck_require__(9896);

const values = ['VmSize', 'VmRSS', 'VmData'];

const PROCESS_RESIDENT_MEMORY = 'process_resident_memory_bytes';
const PROCESS_VIRTUAL_MEMORY = 'process_virtual_memory_bytes';
const PROCESS_HEAP = 'process_heap_bytes';

function structureOutput(input) {
	return input.split('\n').reduce((acc, string) => {
		if (!values.some(value => string.startsWith(value))) {
			return acc;
		}

		const split = string.split(':');

		// Get the value
		let value = split[1].trim();
		// Remove trailing ` kb`
		value = value.substr(0, value.length - 3);
		// Make it into a number in bytes bytes
		value = Number(value) * 1024;

		acc[split[0]] = value;

		return acc;
	}, {});
}

module.exports = (registry, config = {}) => {
	const registers = registry ? [registry] : undefined;
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	const residentMemGauge = new Gauge({
		name: namePrefix + PROCESS_RESIDENT_MEMORY,
		help: 'Resident memory size in bytes.',
		registers,
		labelNames,
		// Use this one metric's `collect` to set all metrics' values.
		collect() {
			try {
				// Sync I/O is often problematic, but /proc isn't really I/O, it
				// a virtual filesystem that maps directly to in-kernel data
				// structures and never blocks.
				//
				// Node.js/libuv do this already for process.memoryUsage(), see:
				// - https://github.com/libuv/libuv/blob/a629688008694ed8022269e66826d4d6ec688b83/src/unix/linux-core.c#L506-L523
				const stat = fs.readFileSync('/proc/self/status', 'utf8');
				const structuredOutput = structureOutput(stat);

				residentMemGauge.set(labels, structuredOutput.VmRSS);
				virtualMemGauge.set(labels, structuredOutput.VmSize);
				heapSizeMemGauge.set(labels, structuredOutput.VmData);
			} catch {
				// noop
			}
		},
	});
	const virtualMemGauge = new Gauge({
		name: namePrefix + PROCESS_VIRTUAL_MEMORY,
		help: 'Virtual memory size in bytes.',
		registers,
		labelNames,
	});
	const heapSizeMemGauge = new Gauge({
		name: namePrefix + PROCESS_HEAP,
		help: 'Process heap size in bytes.',
		registers,
		labelNames,
	});
};

module.exports.metricNames = [
	PROCESS_RESIDENT_MEMORY,
	PROCESS_VIRTUAL_MEMORY,
	PROCESS_HEAP,
];


/***/ }),

/***/ 8293:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const OtelApi = __nccwpck_require__(1408);
const Counter = __nccwpck_require__(8606);

const PROCESS_CPU_USER_SECONDS = 'process_cpu_user_seconds_total';
const PROCESS_CPU_SYSTEM_SECONDS = 'process_cpu_system_seconds_total';
const PROCESS_CPU_SECONDS = 'process_cpu_seconds_total';

module.exports = (registry, config = {}) => {
	const registers = registry ? [registry] : undefined;
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const exemplars = config.enableExemplars ? config.enableExemplars : false;
	const labelNames = Object.keys(labels);

	let lastCpuUsage = process.cpuUsage();

	const cpuUserUsageCounter = new Counter({
		name: namePrefix + PROCESS_CPU_USER_SECONDS,
		help: 'Total user CPU time spent in seconds.',
		enableExemplars: exemplars,
		registers,
		labelNames,
		// Use this one metric's `collect` to set all metrics' values.
		collect() {
			const cpuUsage = process.cpuUsage();

			const userUsageMicros = cpuUsage.user - lastCpuUsage.user;
			const systemUsageMicros = cpuUsage.system - lastCpuUsage.system;

			lastCpuUsage = cpuUsage;

			if (this.enableExemplars) {
				let exemplarLabels = {};
				const currentSpan = OtelApi.trace.getSpan(OtelApi.context.active());
				if (currentSpan) {
					exemplarLabels = {
						traceId: currentSpan.spanContext().traceId,
						spanId: currentSpan.spanContext().spanId,
					};
				}
				cpuUserUsageCounter.inc({
					labels,
					value: userUsageMicros / 1e6,
					exemplarLabels,
				});
				cpuSystemUsageCounter.inc({
					labels,
					value: systemUsageMicros / 1e6,
					exemplarLabels,
				});
				cpuUsageCounter.inc({
					labels,
					value: (userUsageMicros + systemUsageMicros) / 1e6,
					exemplarLabels,
				});
			} else {
				cpuUserUsageCounter.inc(labels, userUsageMicros / 1e6);
				cpuSystemUsageCounter.inc(labels, systemUsageMicros / 1e6);
				cpuUsageCounter.inc(
					labels,
					(userUsageMicros + systemUsageMicros) / 1e6,
				);
			}
		},
	});
	const cpuSystemUsageCounter = new Counter({
		name: namePrefix + PROCESS_CPU_SYSTEM_SECONDS,
		help: 'Total system CPU time spent in seconds.',
		enableExemplars: exemplars,
		registers,
		labelNames,
	});
	const cpuUsageCounter = new Counter({
		name: namePrefix + PROCESS_CPU_SECONDS,
		help: 'Total user and system CPU time spent in seconds.',
		enableExemplars: exemplars,
		registers,
		labelNames,
	});
};

module.exports.metricNames = [
	PROCESS_CPU_USER_SECONDS,
	PROCESS_CPU_SYSTEM_SECONDS,
	PROCESS_CPU_SECONDS,
];


/***/ }),

/***/ 5490:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const { aggregateByObjectName } = __nccwpck_require__(7965);
const { updateMetrics } = __nccwpck_require__(7965);
const Gauge = __nccwpck_require__(7173);

const NODEJS_ACTIVE_HANDLES = 'nodejs_active_handles';
const NODEJS_ACTIVE_HANDLES_TOTAL = 'nodejs_active_handles_total';

module.exports = (registry, config = {}) => {
	// Don't do anything if the function is removed in later nodes (exists in node@6-12...)
	if (typeof process._getActiveHandles !== 'function') {
		return;
	}

	const registers = registry ? [registry] : undefined;
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_HANDLES,
		help: 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
		labelNames: ['type', ...labelNames],
		registers,
		collect() {
			const handles = process._getActiveHandles();
			updateMetrics(this, aggregateByObjectName(handles), labels);
		},
	});
	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_HANDLES_TOTAL,
		help: 'Total number of active handles.',
		registers,
		labelNames,
		collect() {
			const handles = process._getActiveHandles();
			this.set(labels, handles.length);
		},
	});
};

module.exports.metricNames = [
	NODEJS_ACTIVE_HANDLES,
	NODEJS_ACTIVE_HANDLES_TOTAL,
];


/***/ }),

/***/ 9655:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const fs = __nccwpck_require__(9896);

const PROCESS_MAX_FDS = 'process_max_fds';

let maxFds;

module.exports = (registry, config = {}) => {
	if (maxFds === undefined) {
		// This will fail if a linux-like procfs is not available.
		try {
			const limits = fs.readFileSync('/proc/self/limits', 'utf8');
			const lines = limits.split('\n');
			for (const line of lines) {
				if (line.startsWith('Max open files')) {
					const parts = line.split(/  +/);
					maxFds = Number(parts[1]);
					break;
				}
			}
		} catch {
			return;
		}
	}

	if (maxFds === undefined) return;

	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + PROCESS_MAX_FDS,
		help: 'Maximum number of open file descriptors.',
		registers: registry ? [registry] : undefined,
		labelNames,
		collect() {
			if (maxFds !== undefined) this.set(labels, maxFds);
		},
	});
};

module.exports.metricNames = [PROCESS_MAX_FDS];


/***/ }),

/***/ 5217:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const fs = __nccwpck_require__(9896);
const process = __nccwpck_require__(932);

const PROCESS_OPEN_FDS = 'process_open_fds';

module.exports = (registry, config = {}) => {
	if (process.platform !== 'linux') {
		return;
	}

	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + PROCESS_OPEN_FDS,
		help: 'Number of open file descriptors.',
		registers: registry ? [registry] : undefined,
		labelNames,
		collect() {
			try {
				const fds = fs.readdirSync('/proc/self/fd');
				// Minus 1 to not count the fd that was used by readdirSync(),
				// it's now closed.
				this.set(labels, fds.length - 1);
			} catch {
				// noop
			}
		},
	});
};

module.exports.metricNames = [PROCESS_OPEN_FDS];


/***/ }),

/***/ 7439:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


const Gauge = __nccwpck_require__(7173);
const { aggregateByObjectName } = __nccwpck_require__(7965);
const { updateMetrics } = __nccwpck_require__(7965);

const NODEJS_ACTIVE_REQUESTS = 'nodejs_active_requests';
const NODEJS_ACTIVE_REQUESTS_TOTAL = 'nodejs_active_requests_total';

module.exports = (registry, config = {}) => {
	// Don't do anything if the function is removed in later nodes (exists in node@6)
	if (typeof process._getActiveRequests !== 'function') {
		return;
	}

	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_REQUESTS,
		help: 'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
		labelNames: ['type', ...labelNames],
		registers: registry ? [registry] : undefined,
		collect() {
			const requests = process._getActiveRequests();
			updateMetrics(this, aggregateByObjectName(requests), labels);
		},
	});

	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_REQUESTS_TOTAL,
		help: 'Total number of active requests.',
		registers: registry ? [registry] : undefined,
		labelNames,
		collect() {
			const requests = process._getActiveRequests();
			this.set(labels, requests.length);
		},
	});
};

module.exports.metricNames = [
	NODEJS_ACTIVE_REQUESTS,
	NODEJS_ACTIVE_REQUESTS_TOTAL,
];


/***/ }),

/***/ 884:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {


const Gauge = __nccwpck_require__(7173);
const { updateMetrics } = __nccwpck_require__(7965);

const NODEJS_ACTIVE_RESOURCES = 'nodejs_active_resources';
const NODEJS_ACTIVE_RESOURCES_TOTAL = 'nodejs_active_resources_total';

module.exports = (registry, config = {}) => {
	// Don't do anything if the function does not exist in previous nodes (exists in node@17.3.0)
	if (typeof process.getActiveResourcesInfo !== 'function') {
		return;
	}

	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_RESOURCES,
		help: 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
		labelNames: ['type', ...labelNames],
		registers: registry ? [registry] : undefined,
		collect() {
			const resources = process.getActiveResourcesInfo();

			const data = {};

			for (let i = 0; i < resources.length; i++) {
				const resource = resources[i];

				if (Object.hasOwn(data, resource)) {
					data[resource] += 1;
				} else {
					data[resource] = 1;
				}
			}

			updateMetrics(this, data, labels);
		},
	});

	new Gauge({
		name: namePrefix + NODEJS_ACTIVE_RESOURCES_TOTAL,
		help: 'Total number of active resources.',
		registers: registry ? [registry] : undefined,
		labelNames,
		collect() {
			const resources = process.getActiveResourcesInfo();
			this.set(labels, resources.length);
		},
	});
};

module.exports.metricNames = [
	NODEJS_ACTIVE_RESOURCES,
	NODEJS_ACTIVE_RESOURCES_TOTAL,
];


/***/ }),

/***/ 8228:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const startInSeconds = Math.round(Date.now() / 1000 - process.uptime());

const PROCESS_START_TIME = 'process_start_time_seconds';

module.exports = (registry, config = {}) => {
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + PROCESS_START_TIME,
		help: 'Start time of the process since unix epoch in seconds.',
		registers: registry ? [registry] : undefined,
		labelNames,
		aggregator: 'omit',
		collect() {
			this.set(labels, startInSeconds);
		},
	});
};

module.exports.metricNames = [PROCESS_START_TIME];


/***/ }),

/***/ 3344:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const Gauge = __nccwpck_require__(7173);
const version = process.version;
const versionSegments = version.slice(1).split('.').map(Number);

const NODE_VERSION_INFO = 'nodejs_version_info';

module.exports = (registry, config = {}) => {
	const namePrefix = config.prefix ? config.prefix : '';
	const labels = config.labels ? config.labels : {};
	const labelNames = Object.keys(labels);

	new Gauge({
		name: namePrefix + NODE_VERSION_INFO,
		help: 'Node.js version info.',
		labelNames: ['version', 'major', 'minor', 'patch', ...labelNames],
		registers: registry ? [registry] : undefined,
		aggregator: 'first',
		collect() {
			// Needs to be in collect() so value is present even if reg is reset
			this.labels(
				version,
				versionSegments[0],
				versionSegments[1],
				versionSegments[2],
				...Object.values(labels),
			).set(1);
		},
	});
};

module.exports.metricNames = [NODE_VERSION_INFO];


/***/ }),

/***/ 7524:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const url = __nccwpck_require__(7016);
const http = __nccwpck_require__(8611);
const https = __nccwpck_require__(5692);
const { gzipSync } = __nccwpck_require__(3106);
const { globalRegistry } = __nccwpck_require__(1627);

class Pushgateway {
	constructor(gatewayUrl, options, registry) {
		if (!registry) {
			registry = globalRegistry;
		}
		this.registry = registry;
		this.gatewayUrl = gatewayUrl;
		const { requireJobName, ...requestOptions } = {
			requireJobName: true,
			...options,
		};
		this.requireJobName = requireJobName;
		this.requestOptions = requestOptions;
	}

	pushAdd(params = {}) {
		if (this.requireJobName && !params.jobName) {
			throw new Error('Missing jobName parameter');
		}

		return useGateway.call(this, 'POST', params.jobName, params.groupings);
	}

	push(params = {}) {
		if (this.requireJobName && !params.jobName) {
			throw new Error('Missing jobName parameter');
		}

		return useGateway.call(this, 'PUT', params.jobName, params.groupings);
	}

	delete(params = {}) {
		if (this.requireJobName && !params.jobName) {
			throw new Error('Missing jobName parameter');
		}

		return useGateway.call(this, 'DELETE', params.jobName, params.groupings);
	}
}
async function useGateway(method, job, groupings) {
	// `URL` first added in v6.13.0
	// eslint-disable-next-line n/no-deprecated-api
	const gatewayUrlParsed = url.parse(this.gatewayUrl);
	const gatewayUrlPath =
		gatewayUrlParsed.pathname && gatewayUrlParsed.pathname !== '/'
			? gatewayUrlParsed.pathname
			: '';
	const jobPath = job
		? `/job/${encodeURIComponent(job)}${generateGroupings(groupings)}`
		: '';
	const path = `${gatewayUrlPath}/metrics${jobPath}`;

	// eslint-disable-next-line n/no-deprecated-api
	const target = url.resolve(this.gatewayUrl, path);
	// eslint-disable-next-line n/no-deprecated-api
	const requestParams = url.parse(target);
	const httpModule = isHttps(requestParams.href) ? https : http;
	const options = Object.assign(requestParams, this.requestOptions, {
		method,
	});

	return new Promise((resolve, reject) => {
		if (method === 'DELETE' && options.headers) {
			delete options.headers['Content-Encoding'];
		}
		const req = httpModule.request(options, resp => {
			let body = '';
			resp.setEncoding('utf8');
			resp.on('data', chunk => {
				body += chunk;
			});
			resp.on('end', () => {
				if (resp.statusCode >= 400) {
					reject(
						new Error(`push failed with status ${resp.statusCode}, ${body}`),
					);
				} else {
					resolve({ resp, body });
				}
			});
		});
		req.on('error', err => {
			reject(err);
		});

		req.on('timeout', () => {
			req.destroy(new Error('Pushgateway request timed out'));
		});

		if (method !== 'DELETE') {
			this.registry
				.metrics()
				.then(metrics => {
					if (
						options.headers &&
						options.headers['Content-Encoding'] === 'gzip'
					) {
						metrics = gzipSync(metrics);
					}
					req.write(metrics);
					req.end();
				})
				.catch(err => {
					reject(err);
				});
		} else {
			req.end();
		}
	});
}

function generateGroupings(groupings) {
	if (!groupings) {
		return '';
	}
	return Object.keys(groupings)
		.map(
			key =>
				`/${encodeURIComponent(key)}/${encodeURIComponent(groupings[key])}`,
		)
		.join('');
}

function isHttps(href) {
	return href.search(/^https/) !== -1;
}

module.exports = Pushgateway;


/***/ }),

/***/ 1627:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const { getValueAsString } = __nccwpck_require__(9588);

class Registry {
	static get PROMETHEUS_CONTENT_TYPE() {
		return 'text/plain; version=0.0.4; charset=utf-8';
	}

	static get OPENMETRICS_CONTENT_TYPE() {
		return 'application/openmetrics-text; version=1.0.0; charset=utf-8';
	}

	constructor(regContentType = Registry.PROMETHEUS_CONTENT_TYPE) {
		this._metrics = {};
		this._collectors = [];
		this._defaultLabels = {};
		if (
			regContentType !== Registry.PROMETHEUS_CONTENT_TYPE &&
			regContentType !== Registry.OPENMETRICS_CONTENT_TYPE
		) {
			throw new TypeError(`Content type ${regContentType} is unsupported`);
		}
		this._contentType = regContentType;
	}

	getMetricsAsArray() {
		return Object.values(this._metrics);
	}

	async getMetricsAsString(metrics) {
		const metric =
			typeof metrics.getForPromString === 'function'
				? await metrics.getForPromString()
				: await metrics.get();

		const name = escapeString(metric.name);
		const help = `# HELP ${name} ${escapeString(metric.help)}`;
		const type = `# TYPE ${name} ${metric.type}`;
		const values = [help, type];

		const defaultLabels =
			Object.keys(this._defaultLabels).length > 0 ? this._defaultLabels : null;

		const isOpenMetrics =
			this.contentType === Registry.OPENMETRICS_CONTENT_TYPE;

		for (const val of metric.values || []) {
			let { metricName = name, labels = {} } = val;
			const { sharedLabels = {} } = val;
			if (isOpenMetrics && metric.type === 'counter') {
				metricName = `${metricName}_total`;
			}

			if (defaultLabels) {
				labels = { ...labels, ...defaultLabels, ...labels };
			}

			// We have to flatten these separately to avoid duplicate labels appearing
			// between the base labels and the shared labels
			const formattedLabels = formatLabels(labels, sharedLabels);

			const flattenedShared = flattenSharedLabels(sharedLabels);
			const labelParts = [...formattedLabels, flattenedShared].filter(Boolean);
			const labelsString = labelParts.length ? `{${labelParts.join(',')}}` : '';
			let fullMetricLine = `${metricName}${labelsString} ${getValueAsString(
				val.value,
			)}`;

			const { exemplar } = val;
			if (exemplar && isOpenMetrics) {
				const formattedExemplars = formatLabels(exemplar.labelSet);
				fullMetricLine += ` # {${formattedExemplars.join(
					',',
				)}} ${getValueAsString(exemplar.value)} ${exemplar.timestamp}`;
			}
			values.push(fullMetricLine);
		}

		return values.join('\n');
	}

	async metrics() {
		const isOpenMetrics =
			this.contentType === Registry.OPENMETRICS_CONTENT_TYPE;

		const promises = this.getMetricsAsArray().map(metric => {
			if (isOpenMetrics && metric.type === 'counter') {
				metric.name = standardizeCounterName(metric.name);
			}
			return this.getMetricsAsString(metric);
		});

		const resolves = await Promise.all(promises);

		return isOpenMetrics
			? `${resolves.join('\n')}\n# EOF\n`
			: `${resolves.join('\n\n')}\n`;
	}

	registerMetric(metric) {
		if (this._metrics[metric.name] && this._metrics[metric.name] !== metric) {
			throw new Error(
				`A metric with the name ${metric.name} has already been registered.`,
			);
		}

		this._metrics[metric.name] = metric;
	}

	clear() {
		this._metrics = {};
		this._defaultLabels = {};
	}

	async getMetricsAsJSON() {
		const metrics = [];
		const defaultLabelNames = Object.keys(this._defaultLabels);

		const promises = [];

		for (const metric of this.getMetricsAsArray()) {
			promises.push(metric.get());
		}

		const resolves = await Promise.all(promises);

		for (const item of resolves) {
			if (item.values && defaultLabelNames.length > 0) {
				for (const val of item.values) {
					// Make a copy before mutating
					val.labels = Object.assign({}, val.labels);

					for (const labelName of defaultLabelNames) {
						val.labels[labelName] =
							val.labels[labelName] || this._defaultLabels[labelName];
					}
				}
			}

			metrics.push(item);
		}

		return metrics;
	}

	removeSingleMetric(name) {
		delete this._metrics[name];
	}

	getSingleMetricAsString(name) {
		return this.getMetricsAsString(this._metrics[name]);
	}

	getSingleMetric(name) {
		return this._metrics[name];
	}

	setDefaultLabels(labels) {
		this._defaultLabels = labels;
	}

	resetMetrics() {
		for (const metric in this._metrics) {
			this._metrics[metric].reset();
		}
	}

	get contentType() {
		return this._contentType;
	}

	setContentType(metricsContentType) {
		if (
			metricsContentType === Registry.OPENMETRICS_CONTENT_TYPE ||
			metricsContentType === Registry.PROMETHEUS_CONTENT_TYPE
		) {
			this._contentType = metricsContentType;
		} else {
			throw new Error(`Content type ${metricsContentType} is unsupported`);
		}
	}

	static merge(registers) {
		const regType = registers[0].contentType;
		for (const reg of registers) {
			if (reg.contentType !== regType) {
				throw new Error(
					'Registers can only be merged if they have the same content type',
				);
			}
		}
		const mergedRegistry = new Registry(regType);

		const metricsToMerge = registers.reduce(
			(acc, reg) => acc.concat(reg.getMetricsAsArray()),
			[],
		);

		metricsToMerge.forEach(mergedRegistry.registerMetric, mergedRegistry);
		return mergedRegistry;
	}
}

function formatLabels(labels, exclude) {
	const { hasOwnProperty } = Object.prototype;
	const formatted = [];
	for (const [name, value] of Object.entries(labels)) {
		if (!exclude || !hasOwnProperty.call(exclude, name)) {
			formatted.push(`${name}="${escapeLabelValue(value)}"`);
		}
	}
	return formatted;
}

const sharedLabelCache = new WeakMap();
function flattenSharedLabels(labels) {
	const cached = sharedLabelCache.get(labels);
	if (cached) {
		return cached;
	}

	const formattedLabels = formatLabels(labels);
	const flattened = formattedLabels.join(',');
	sharedLabelCache.set(labels, flattened);
	return flattened;
}
function escapeLabelValue(str) {
	if (typeof str !== 'string') {
		return str;
	}
	return escapeString(str).replace(/"/g, '\\"');
}
function escapeString(str) {
	return str.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
function standardizeCounterName(name) {
	return name.replace(/_total$/, '');
}

module.exports = Registry;
module.exports.globalRegistry = new Registry();


/***/ }),

/***/ 5910:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

/**
 * Summary
 */


const util = __nccwpck_require__(9023);
const { getLabels, hashObject, removeLabels } = __nccwpck_require__(9588);
const { validateLabel } = __nccwpck_require__(1539);
const { Metric } = __nccwpck_require__(2476);
const timeWindowQuantiles = __nccwpck_require__(7639);

const DEFAULT_COMPRESS_COUNT = 1000; // every 1000 measurements

class Summary extends Metric {
	constructor(config) {
		super(config, {
			percentiles: [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999],
			compressCount: DEFAULT_COMPRESS_COUNT,
			hashMap: {},
		});

		this.type = 'summary';

		for (const label of this.labelNames) {
			if (label === 'quantile')
				throw new Error('quantile is a reserved label keyword');
		}

		if (this.labelNames.length === 0) {
			this.hashMap = {
				[hashObject({})]: {
					labels: {},
					td: new timeWindowQuantiles(this.maxAgeSeconds, this.ageBuckets),
					count: 0,
					sum: 0,
				},
			};
		}
	}

	/**
	 * Observe a value
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @param {Number} value - Value to observe
	 * @returns {void}
	 */
	observe(labels, value) {
		observe.call(this, labels === 0 ? 0 : labels || {})(value);
	}

	async get() {
		if (this.collect) {
			const v = this.collect();
			if (v instanceof Promise) await v;
		}
		const hashKeys = Object.keys(this.hashMap);
		const values = [];

		hashKeys.forEach(hashKey => {
			const s = this.hashMap[hashKey];
			if (s) {
				if (this.pruneAgedBuckets && s.td.size() === 0) {
					delete this.hashMap[hashKey];
				} else {
					extractSummariesForExport(s, this.percentiles).forEach(v => {
						values.push(v);
					});
					values.push(getSumForExport(s, this));
					values.push(getCountForExport(s, this));
				}
			}
		});

		return {
			name: this.name,
			help: this.help,
			type: this.type,
			values,
			aggregator: this.aggregator,
		};
	}

	reset() {
		const data = Object.values(this.hashMap);
		data.forEach(s => {
			s.td.reset();
			s.count = 0;
			s.sum = 0;
		});
	}

	/**
	 * Start a timer that could be used to logging durations
	 * @param {object} labels - Object with labels where key is the label key and value is label value. Can only be one level deep
	 * @returns {function} - Function to invoke when you want to stop the timer and observe the duration in seconds
	 * @example
	 * var end = summary.startTimer();
	 * makeExpensiveXHRRequest(function(err, res) {
	 *	end(); //Observe the duration of expensiveXHRRequest
	 * });
	 */
	startTimer(labels) {
		return startTimer.call(this, labels)();
	}

	labels(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		return {
			observe: observe.call(this, labels),
			startTimer: startTimer.call(this, labels),
		};
	}

	remove(...args) {
		const labels = getLabels(this.labelNames, args);
		validateLabel(this.labelNames, labels);
		removeLabels.call(this, this.hashMap, labels, this.sortedLabelNames);
	}
}

function extractSummariesForExport(summaryOfLabels, percentiles) {
	summaryOfLabels.td.compress();

	return percentiles.map(percentile => {
		const percentileValue = summaryOfLabels.td.percentile(percentile);
		return {
			labels: Object.assign({ quantile: percentile }, summaryOfLabels.labels),
			value: percentileValue ? percentileValue : 0,
		};
	});
}

function getCountForExport(value, summary) {
	return {
		metricName: `${summary.name}_count`,
		labels: value.labels,
		value: value.count,
	};
}

function getSumForExport(value, summary) {
	return {
		metricName: `${summary.name}_sum`,
		labels: value.labels,
		value: value.sum,
	};
}

function startTimer(startLabels) {
	return () => {
		const start = process.hrtime();
		return endLabels => {
			const delta = process.hrtime(start);
			const value = delta[0] + delta[1] / 1e9;
			this.observe(Object.assign({}, startLabels, endLabels), value);
			return value;
		};
	};
}

function observe(labels) {
	return value => {
		const labelValuePair = convertLabelsAndValues(labels, value);

		validateLabel(this.labelNames, labels);
		if (!Number.isFinite(labelValuePair.value)) {
			throw new TypeError(
				`Value is not a valid number: ${util.format(labelValuePair.value)}`,
			);
		}

		const hash = hashObject(labelValuePair.labels, this.sortedLabelNames);
		let summaryOfLabel = this.hashMap[hash];
		if (!summaryOfLabel) {
			summaryOfLabel = {
				labels: labelValuePair.labels,
				td: new timeWindowQuantiles(this.maxAgeSeconds, this.ageBuckets),
				count: 0,
				sum: 0,
			};
		}

		summaryOfLabel.td.push(labelValuePair.value);
		summaryOfLabel.count++;
		if (summaryOfLabel.count % this.compressCount === 0) {
			summaryOfLabel.td.compress();
		}
		summaryOfLabel.sum += labelValuePair.value;
		this.hashMap[hash] = summaryOfLabel;
	};
}

function convertLabelsAndValues(labels, value) {
	if (value === undefined) {
		return {
			value: labels,
			labels: {},
		};
	}

	return {
		labels,
		value,
	};
}

module.exports = Summary;


/***/ }),

/***/ 7639:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {



const { TDigest } = __nccwpck_require__(3528);

class TimeWindowQuantiles {
	constructor(maxAgeSeconds, ageBuckets) {
		this.maxAgeSeconds = maxAgeSeconds || 0;
		this.ageBuckets = ageBuckets || 0;

		this.shouldRotate = maxAgeSeconds && ageBuckets;

		this.ringBuffer = Array(ageBuckets).fill(new TDigest());
		this.currentBuffer = 0;

		this.lastRotateTimestampMillis = Date.now();
		this.durationBetweenRotatesMillis =
			(maxAgeSeconds * 1000) / ageBuckets || Infinity;
	}

	size() {
		const bucket = rotate.call(this);
		return bucket.size();
	}

	percentile(quantile) {
		const bucket = rotate.call(this);
		return bucket.percentile(quantile);
	}

	push(value) {
		rotate.call(this);
		this.ringBuffer.forEach(bucket => {
			bucket.push(value);
		});
	}

	reset() {
		this.ringBuffer.forEach(bucket => {
			bucket.reset();
		});
	}

	compress() {
		this.ringBuffer.forEach(bucket => {
			bucket.compress();
		});
	}
}

function rotate() {
	let timeSinceLastRotateMillis = Date.now() - this.lastRotateTimestampMillis;
	while (
		timeSinceLastRotateMillis > this.durationBetweenRotatesMillis &&
		this.shouldRotate
	) {
		this.ringBuffer[this.currentBuffer] = new TDigest();

		if (++this.currentBuffer >= this.ringBuffer.length) {
			this.currentBuffer = 0;
		}
		timeSinceLastRotateMillis -= this.durationBetweenRotatesMillis;
		this.lastRotateTimestampMillis += this.durationBetweenRotatesMillis;
	}
	return this.ringBuffer[this.currentBuffer];
}

module.exports = TimeWindowQuantiles;


/***/ }),

/***/ 9588:
/***/ ((__unused_webpack_module, exports) => {



exports.getValueAsString = function getValueString(value) {
	if (Number.isNaN(value)) {
		return 'Nan';
	} else if (!Number.isFinite(value)) {
		if (value < 0) {
			return '-Inf';
		} else {
			return '+Inf';
		}
	} else {
		return `${value}`;
	}
};

exports.removeLabels = function removeLabels(
	hashMap,
	labels,
	sortedLabelNames,
) {
	const hash = hashObject(labels, sortedLabelNames);
	delete hashMap[hash];
};

exports.setValue = function setValue(hashMap, value, labels) {
	const hash = hashObject(labels);
	hashMap[hash] = {
		value: typeof value === 'number' ? value : 0,
		labels: labels || {},
	};
	return hashMap;
};

exports.setValueDelta = function setValueDelta(
	hashMap,
	deltaValue,
	labels,
	hash = '',
) {
	const value = typeof deltaValue === 'number' ? deltaValue : 0;
	if (hashMap[hash]) {
		hashMap[hash].value += value;
	} else {
		hashMap[hash] = { value, labels };
	}
	return hashMap;
};

exports.getLabels = function (labelNames, args) {
	if (typeof args[0] === 'object') {
		return args[0];
	}

	if (labelNames.length !== args.length) {
		throw new Error(
			`Invalid number of arguments (${args.length}): "${args.join(
				', ',
			)}" for label names (${labelNames.length}): "${labelNames.join(', ')}".`,
		);
	}

	const acc = {};
	for (let i = 0; i < labelNames.length; i++) {
		acc[labelNames[i]] = args[i];
	}
	return acc;
};

function fastHashObject(keys, labels) {
	if (keys.length === 0) {
		return '';
	}

	let hash = '';

	for (let i = 0; i < keys.length; i++) {
		const key = keys[i];
		const value = labels[key];
		if (value === undefined) continue;

		hash += `${key}:${value},`;
	}

	return hash;
}

function hashObject(labels, labelNames) {
	// We don't actually need a hash here. We just need a string that
	// is unique for each possible labels object and consistent across
	// calls with equivalent labels objects.

	if (labelNames) {
		return fastHashObject(labelNames, labels);
	}

	const keys = Object.keys(labels);
	if (keys.length > 1) {
		keys.sort(); // need consistency across calls
	}

	return fastHashObject(keys, labels);
}
exports.hashObject = hashObject;

exports.isObject = function isObject(obj) {
	return obj !== null && typeof obj === 'object';
};

exports.nowTimestamp = function nowTimestamp() {
	return Date.now() / 1000;
};

class Grouper extends Map {
	/**
	 * Adds the `value` to the `key`'s array of values.
	 * @param {*} key Key to set.
	 * @param {*} value Value to add to `key`'s array.
	 * @returns {undefined} undefined.
	 */
	add(key, value) {
		if (this.has(key)) {
			this.get(key).push(value);
		} else {
			this.set(key, [value]);
		}
	}
}

exports.Grouper = Grouper;


/***/ }),

/***/ 1539:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {



const util = __nccwpck_require__(9023);

// These are from https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels
const metricRegexp = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelRegexp = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

exports.validateMetricName = function (name) {
	return metricRegexp.test(name);
};

exports.validateLabelName = function (names = []) {
	return names.every(name => labelRegexp.test(name));
};

exports.validateLabel = function validateLabel(savedLabels, labels) {
	for (const label in labels) {
		if (!savedLabels.includes(label)) {
			throw new Error(
				`Added label "${label}" is not included in initial labelset: ${util.inspect(
					savedLabels,
				)}`,
			);
		}
	}
};


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

/***/ 3528:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

//
// TDigest:
//
// approximate distribution percentiles from a stream of reals
//
var RBTree = (__nccwpck_require__(7750).RBTree);

function TDigest(delta, K, CX) {
    // allocate a TDigest structure.
    //
    // delta is the compression factor, the max fraction of mass that
    // can be owned by one centroid (bigger, up to 1.0, means more
    // compression). delta=false switches off TDigest behavior and treats
    // the distribution as discrete, with no merging and exact values
    // reported.
    //
    // K is a size threshold that triggers recompression as the TDigest
    // grows during input.  (Set it to 0 to disable automatic recompression)
    //
    // CX specifies how often to update cached cumulative totals used
    // for quantile estimation during ingest (see cumulate()).  Set to
    // 0 to use exact quantiles for each new point.
    //
    this.discrete = (delta === false);
    this.delta = delta || 0.01;
    this.K = (K === undefined) ? 25 : K;
    this.CX = (CX === undefined) ? 1.1 : CX;
    this.centroids = new RBTree(compare_centroid_means);
    this.nreset = 0;
    this.reset();
}

TDigest.prototype.reset = function() {
    // prepare to digest new points.
    //
    this.centroids.clear();
    this.n = 0;
    this.nreset += 1;
    this.last_cumulate = 0;
};

TDigest.prototype.size = function() {
    return this.centroids.size;
};

TDigest.prototype.toArray = function(everything) {
    // return {mean,n} of centroids as an array ordered by mean.
    //
    var result = [];
    if (everything) {
        this._cumulate(true); // be sure cumns are exact
        this.centroids.each(function(c) { result.push(c); });
    } else {
        this.centroids.each(function(c) { result.push({mean:c.mean, n:c.n}); });
    }
    return result;
};

TDigest.prototype.summary = function() {
    var approx = (this.discrete) ? "exact " : "approximating ";
    var s = [approx + this.n + " samples using " + this.size() + " centroids",
             "min = "+this.percentile(0),
             "Q1  = "+this.percentile(0.25),
             "Q2  = "+this.percentile(0.5),
             "Q3  = "+this.percentile(0.75),
             "max = "+this.percentile(1.0)];
    return s.join('\n');
};

function compare_centroid_means(a, b) {
    // order two centroids by mean.
    //
    return (a.mean > b.mean) ? 1 : (a.mean < b.mean) ? -1 : 0;
}

function compare_centroid_mean_cumns(a, b) {
    // order two centroids by mean_cumn.
    //
    return (a.mean_cumn - b.mean_cumn);
}

TDigest.prototype.push = function(x, n) {
    // incorporate value or array of values x, having count n into the
    // TDigest. n defaults to 1.
    //
    n = n || 1;
    x = Array.isArray(x) ? x : [x];
    for (var i = 0 ; i < x.length ; i++) {
        this._digest(x[i], n);
    }
};

TDigest.prototype.push_centroid = function(c) {
    // incorporate centroid or array of centroids c
    //
    c = Array.isArray(c) ? c : [c];
    for (var i = 0 ; i < c.length ; i++) {
        this._digest(c[i].mean, c[i].n);
    }
};

TDigest.prototype._cumulate = function(exact) {
    // update cumulative counts for each centroid
    //
    // exact: falsey means only cumulate after sufficient
    // growth. During ingest, these counts are used as quantile
    // estimates, and they work well even when somewhat out of
    // date. (this is a departure from the publication, you may set CX
    // to 0 to disable).
    //
    if (this.n === this.last_cumulate ||
        !exact && this.CX && this.CX > (this.n / this.last_cumulate)) {
        return;
    }
    var cumn = 0;
    this.centroids.each(function(c) {
        c.mean_cumn = cumn + c.n / 2; // half of n at the mean
        cumn = c.cumn = cumn + c.n;
    });
    this.n = this.last_cumulate = cumn;
};

TDigest.prototype.find_nearest = function(x) {
    // find the centroid closest to x. The assumption of
    // unique means and a unique nearest centroid departs from the
    // paper, see _digest() below
    //
    if (this.size() === 0) {
        return null;
    }
    var iter = this.centroids.lowerBound({mean:x}); // x <= iter || iter==null
    var c = (iter.data() === null) ? iter.prev() : iter.data();
    if (c.mean === x || this.discrete) {
        return c; // c is either x or a neighbor (discrete: no distance func)
    }
    var prev = iter.prev();
    if (prev && Math.abs(prev.mean - x) < Math.abs(c.mean - x)) {
        return prev;
    } else {
        return c;
    }
};

TDigest.prototype._new_centroid = function(x, n, cumn) {
    // create and insert a new centroid into the digest (don't update
    // cumulatives).
    //
    var c = {mean:x, n:n, cumn:cumn};
    this.centroids.insert(c);
    this.n += n;
    return c;
};

TDigest.prototype._addweight = function(nearest, x, n) {
    // add weight at location x to nearest centroid.  adding x to
    // nearest will not shift its relative position in the tree and
    // require reinsertion.
    //
    if (x !== nearest.mean) {
        nearest.mean += n * (x - nearest.mean) / (nearest.n + n);
    }
    nearest.cumn += n;
    nearest.mean_cumn += n / 2;
    nearest.n += n;
    this.n += n;
};

TDigest.prototype._digest = function(x, n) {
    // incorporate value x, having count n into the TDigest.
    //
    var min = this.centroids.min();
    var max = this.centroids.max();
    var nearest = this.find_nearest(x);
    if (nearest && nearest.mean === x) {
        // accumulate exact matches into the centroid without
        // limit. this is a departure from the paper, made so
        // centroids remain unique and code can be simple.
        this._addweight(nearest, x, n);
    } else if (nearest === min) {
        this._new_centroid(x, n, 0); // new point around min boundary
    } else if (nearest === max ) {
        this._new_centroid(x, n, this.n); // new point around max boundary
    } else if (this.discrete) {
        this._new_centroid(x, n, nearest.cumn); // never merge
    } else {
        // conider a merge based on nearest centroid's capacity. if
        // there's not room for all of n, don't bother merging any of
        // it into nearest, as we'll have to make a new centroid
        // anyway for the remainder (departure from the paper).
        var p = nearest.mean_cumn / this.n;
        var max_n = Math.floor(4 * this.n * this.delta * p * (1 - p));
        if (max_n - nearest.n >= n) {
            this._addweight(nearest, x, n);
        } else {
            this._new_centroid(x, n, nearest.cumn);
        }
    }
    this._cumulate(false);
    if (!this.discrete && this.K && this.size() > this.K / this.delta) {
        // re-process the centroids and hope for some compression.
        this.compress();
    }
};

TDigest.prototype.bound_mean = function(x) {
    // find centroids lower and upper such that lower.mean < x <
    // upper.mean or lower.mean === x === upper.mean. Don't call
    // this for x out of bounds.
    //
    var iter = this.centroids.upperBound({mean:x}); // x < iter
    var lower = iter.prev();      // lower <= x
    var upper = (lower.mean === x) ? lower : iter.next();
    return [lower, upper];
};

TDigest.prototype.p_rank = function(x_or_xlist) {
    // return approximate percentile-ranks (0..1) for data value x.
    // or list of x.  calculated according to
    // https://en.wikipedia.org/wiki/Percentile_rank
    //
    // (Note that in continuous mode, boundary sample values will
    // report half their centroid weight inward from 0/1 as the
    // percentile-rank. X values outside the observed range return
    // 0/1)
    //
    // this triggers cumulate() if cumn's are out of date.
    //
    var xs = Array.isArray(x_or_xlist) ? x_or_xlist : [x_or_xlist];
    var ps = xs.map(this._p_rank, this);
    return Array.isArray(x_or_xlist) ? ps : ps[0];
};

TDigest.prototype._p_rank = function(x) {
    if (this.size() === 0) {
        return undefined;
    } else if (x < this.centroids.min().mean) {
        return 0.0;
    } else if (x > this.centroids.max().mean) {
        return 1.0;
    }
    // find centroids that bracket x and interpolate x's cumn from
    // their cumn's.
    this._cumulate(true); // be sure cumns are exact
    var bound = this.bound_mean(x);
    var lower = bound[0], upper = bound[1];
    if (this.discrete) {
        return lower.cumn / this.n;
    } else {
        var cumn = lower.mean_cumn;
        if (lower !== upper) {
            cumn += (x - lower.mean) * (upper.mean_cumn - lower.mean_cumn) / (upper.mean - lower.mean);
        }
        return cumn / this.n;
    }
};

TDigest.prototype.bound_mean_cumn = function(cumn) {
    // find centroids lower and upper such that lower.mean_cumn < x <
    // upper.mean_cumn or lower.mean_cumn === x === upper.mean_cumn. Don't call
    // this for cumn out of bounds.
    //
    // XXX because mean and mean_cumn give rise to the same sort order
    // (up to identical means), use the mean rbtree for our search.
    this.centroids._comparator = compare_centroid_mean_cumns;
    var iter = this.centroids.upperBound({mean_cumn:cumn}); // cumn < iter
    this.centroids._comparator = compare_centroid_means;
    var lower = iter.prev();      // lower <= cumn
    var upper = (lower && lower.mean_cumn === cumn) ? lower : iter.next();
    return [lower, upper];
};

TDigest.prototype.percentile = function(p_or_plist) {
    // for percentage p (0..1), or for each p in a list of ps, return
    // the smallest data value q at which at least p percent of the
    // observations <= q.
    //
    // for discrete distributions, this selects q using the Nearest
    // Rank Method
    // (https://en.wikipedia.org/wiki/Percentile#The_Nearest_Rank_method)
    // (in scipy, same as percentile(...., interpolation='higher')
    //
    // for continuous distributions, interpolates data values between
    // count-weighted bracketing means.
    //
    // this triggers cumulate() if cumn's are out of date.
    //
    var ps = Array.isArray(p_or_plist) ? p_or_plist : [p_or_plist];
    var qs = ps.map(this._percentile, this);
    return Array.isArray(p_or_plist) ? qs : qs[0];
};

TDigest.prototype._percentile = function(p) {
    if (this.size() === 0) {
        return undefined;
    }
    this._cumulate(true); // be sure cumns are exact
    var h = this.n * p;
    var bound = this.bound_mean_cumn(h);
    var lower = bound[0], upper = bound[1];

    if (upper === lower || lower === null || upper === null) {
        return (lower || upper).mean;
    } else if (!this.discrete) {
        return lower.mean + (h - lower.mean_cumn) * (upper.mean - lower.mean) / (upper.mean_cumn - lower.mean_cumn);
    } else if (h <= lower.cumn) {
        return lower.mean;
    } else {
        return upper.mean;
    }
};

function pop_random(choices) {
    // remove and return an item randomly chosen from the array of choices
    // (mutates choices)
    //
    var idx = Math.floor(Math.random() * choices.length);
    return choices.splice(idx, 1)[0];
}

TDigest.prototype.compress = function() {
    // TDigests experience worst case compression (none) when input
    // increases monotonically.  Improve on any bad luck by
    // reconsuming digest centroids as if they were weighted points
    // while shuffling their order (and hope for the best).
    //
    if (this.compressing) {
        return;
    }
    var points = this.toArray();
    this.reset();
    this.compressing = true;
    while (points.length > 0) {
        this.push_centroid(pop_random(points));
    }
    this._cumulate(true);
    this.compressing = false;
};

function Digest(config) {
    // allocate a distribution digest structure. This is an extension
    // of a TDigest structure that starts in exact histogram (discrete)
    // mode, and automatically switches to TDigest mode for large
    // samples that appear to be from a continuous distribution.
    //
    this.config = config || {};
    this.mode = this.config.mode || 'auto'; // disc, cont, auto
    TDigest.call(this, this.mode === 'cont' ? config.delta : false);
    this.digest_ratio = this.config.ratio || 0.9;
    this.digest_thresh = this.config.thresh || 1000;
    this.n_unique = 0;
}
Digest.prototype = Object.create(TDigest.prototype);
Digest.prototype.constructor = Digest;

Digest.prototype.push = function(x_or_xlist) {
    TDigest.prototype.push.call(this, x_or_xlist);
    this.check_continuous();
};

Digest.prototype._new_centroid = function(x, n, cumn) {
    this.n_unique += 1;
    TDigest.prototype._new_centroid.call(this, x, n, cumn);
};

Digest.prototype._addweight = function(nearest, x, n) {
    if (nearest.n === 1) {
        this.n_unique -= 1;
    }
    TDigest.prototype._addweight.call(this, nearest, x, n);
};

Digest.prototype.check_continuous = function() {
    // while in 'auto' mode, if there are many unique elements, assume
    // they are from a continuous distribution and switch to 'cont'
    // mode (tdigest behavior). Return true on transition from
    // disctete to continuous.
    if (this.mode !== 'auto' || this.size() < this.digest_thresh) {
        return false;
    }
    if (this.n_unique / this.size() > this.digest_ratio) {
        this.mode = 'cont';
        this.discrete = false;
        this.delta = this.config.delta || 0.01;
        this.compress();
        return true;
    }
    return false;
};

module.exports = {
    'TDigest': TDigest,
    'Digest': Digest
};


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
/* harmony import */ var _cli_js__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(8642);
/* harmony import */ var _demo_run_js__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(1844);


process.exitCode = await (0,_cli_js__WEBPACK_IMPORTED_MODULE_0__/* .runCli */ .ak)(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), env: process.env, cwd: process.cwd() }, _demo_run_js__WEBPACK_IMPORTED_MODULE_1__/* .runDemo */ .nN);

__webpack_async_result__();
} catch(e) { __webpack_async_result__(e); } }, 1);

/***/ }),

/***/ 8642:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  ak: () => (/* binding */ runCli)
});

// UNUSED EXPORTS: alertsCommand, cliEnvironment, parseArgs, parseDotEnv, usage

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
        metricsPrefix: input('metrics-prefix').trim(),
        secrets: [databaseUrl, testRestoreUrl, source.password].filter((s) => !!s),
    };
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(config.metricsPrefix)) {
        throw new errors/* ConfigurationError */.j1(`Input metrics-prefix must be a Prometheus metric name prefix (letters, digits, _ and :, not starting with a digit); got "${config.metricsPrefix}"`);
    }
    const metricsFile = optional('metrics-file');
    if (metricsFile)
        config.metricsFile = external_node_path_default().resolve(metricsFile);
    const gateway = optional('pushgateway-url');
    if (gateway) {
        let u;
        try {
            u = new URL(gateway);
        }
        catch {
            throw new errors/* ConfigurationError */.j1('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091');
        }
        if (u.protocol !== 'http:' && u.protocol !== 'https:')
            throw new errors/* ConfigurationError */.j1('Input pushgateway-url must be an http(s) URL such as http://pushgateway:9091');
        config.pushgateway = { url: gateway, job: input('pushgateway-job').trim() || 'pgvector-backup' };
        const token = optional('pushgateway-token');
        if (token)
            config.pushgateway.token = token;
        config.secrets.push(gateway);
        if (u.password)
            config.secrets.push(decodeURIComponent(u.password));
        if (token)
            config.secrets.push(token);
    }
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

;// CONCATENATED MODULE: ./src/metrics/alerts.ts
// Prometheus alerting rules for the metrics we export. monitoring/alerts.yml is this function's output with the
// defaults (a test keeps them equal); `pgvector-backup alerts --metrics-prefix rag_backup --stale-hours 24`
// prints them for another prefix or threshold.
const ALERT_DEFAULTS = { prefix: 'pgvector_backup', staleHours: 48, minFreeRatio: 0.2, mountpoint: '/' };
function alertRules(o = ALERT_DEFAULTS) {
    const p = o.prefix;
    const q = (s) => `'${s.replace(/'/g, "''")}'`;
    const rule = (name, expr, forDur, severity, summary, description) => [
        `      - alert: ${name}`,
        `        expr: ${expr}`,
        `        for: ${forDur}`,
        '        labels:',
        `          severity: ${severity}`,
        '        annotations:',
        `          summary: ${q(summary)}`,
        `          description: ${q(description)}`,
    ].join('\n');
    return [
        `# Alerting rules for pgvector-backup (metrics prefix ${p}).`,
        `# Generated by: pgvector-backup alerts --metrics-prefix ${p} --stale-hours ${o.staleHours} --min-free-ratio ${o.minFreeRatio} --mountpoint ${q(o.mountpoint)}`,
        'groups:',
        '  - name: pgvector-backup',
        '    rules:',
        rule('BackupFailed', `${p}_success == 0`, '0m', 'critical', 'Backup of {{ $labels.database }} failed', 'The last backup run of {{ $labels.database }} ({{ $labels.destination }}) failed; see the workflow run or the CLI log.'),
        rule('BackupStale', `time() - ${p}_last_success_timestamp_seconds > ${o.staleHours} * 3600`, '5m', 'warning', 'No successful backup of {{ $labels.database }} in ' + o.staleHours + ' hours', 'The last successful backup of {{ $labels.database }} is {{ $value | humanizeDuration }} old.'),
        rule('BackupVerificationFailed', `${p}_verification_success == 0`, '0m', 'critical', 'A backup of {{ $labels.database }} failed verification', 'The last verification (checksum, structure or test restore) of a {{ $labels.database }} backup failed: do not rely on it.'),
        rule('BackupSizeDrop', `${p}_size_bytes < 0.5 * max_over_time(${p}_size_bytes[2d])`, '0m', 'warning', 'The backup of {{ $labels.database }} is less than half the size of an earlier one', 'A backup that shrank by more than half may have lost data; compare the manifests\' row counts.'),
        rule('BackupStorageLow', `node_filesystem_avail_bytes{mountpoint=~${JSON.stringify(o.mountpoint)}} / node_filesystem_size_bytes{mountpoint=~${JSON.stringify(o.mountpoint)}} < ${o.minFreeRatio}`, '10m', 'warning', 'Less than ' + Math.round(o.minFreeRatio * 100) + '% free on the backup volume {{ $labels.mountpoint }}', 'Free space there, lower retention-days, or move backup-dir to a larger volume.'),
        '',
    ].join('\n');
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

// EXTERNAL MODULE: ./node_modules/prom-client/index.js
var prom_client = __nccwpck_require__(5222);
;// CONCATENATED MODULE: ./src/metrics/metrics.ts
// Prometheus metrics, built with prom-client: the old kit's set (success, last success/failure timestamps,
// duration, size, verification, count) and ours on top. Written atomically to a node_exporter textfile, with
// values carried over from the previous file so that a failure never erases the last success, and pushed to
// a Pushgateway: the full group on success (PUT), only the failure metrics on failure (POST).



const ts = (d) => Math.floor(d.getTime() / 1000);
const METRICS = [
    { name: 'success', help: 'Last backup status (1 = success, 0 = failure).', value: (f) => (f.success === undefined ? undefined : f.success ? 1 : 0) },
    { name: 'last_success_timestamp_seconds', help: 'Unix time of the last successful backup.', value: (f) => (f.success === true ? ts(f.at) : undefined) },
    { name: 'last_failure_timestamp_seconds', help: 'Unix time of the last failed backup.', value: (f) => (f.success === false ? ts(f.at) : undefined) },
    { name: 'duration_seconds', help: 'Duration of the last successful dump.', value: (f) => (f.success ? f.durationSeconds : undefined) },
    { name: 'size_bytes', help: 'Size of the last successful backup archive.', value: (f) => (f.success ? f.sizeBytes : undefined) },
    {
        name: 'verification_success',
        help: 'Last verification status (1 = the backup verified, 0 = it did not).',
        value: (f) => (f.verificationSuccess === undefined ? undefined : f.verificationSuccess ? 1 : 0),
    },
    { name: 'total_count', help: 'Complete backups retained for the database.', value: (f) => f.totalCount },
    { name: 'rows', help: 'Rows in the last successful backup (exact).', value: (f) => (f.success ? f.rows : undefined) },
    { name: 'vectors', help: 'Non-null vector values in the last successful backup.', value: (f) => (f.success ? f.vectors : undefined) },
    { name: 'tables', help: 'Tables in the last successful backup.', value: (f) => (f.success ? f.tables : undefined) },
    { name: 'restore_duration_seconds', help: 'Duration of the last test restore.', value: (f) => f.restoreSeconds },
    { name: 'index_build_seconds', help: 'Index-build (post-data) part of the last test restore.', value: (f) => f.indexBuildSeconds },
    {
        name: 'compression_ratio',
        help: 'Bytes pg_dump wrote per byte stored (1 when pg_dump compressed internally).',
        value: (f) => (f.success && f.sizeBytes && f.dumpBytes ? round(f.dumpBytes / f.sizeBytes) : undefined),
    },
    {
        name: 'throughput_bytes_per_second',
        help: 'Bytes pg_dump wrote per second in the last successful backup.',
        value: (f) => (f.success && f.durationSeconds && f.dumpBytes ? Math.round(f.dumpBytes / f.durationSeconds) : undefined),
    },
    { name: 'oldest_backup_timestamp_seconds', help: 'Unix time of the oldest retained backup.', value: (f) => f.oldestBackupSeconds },
];
function round(n) {
    return Math.round(n * 1000) / 1000;
}
/** Reads the samples of a Prometheus text file (only what we need: name{labels} value). */
function parseTextfile(text) {
    const out = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#'))
            continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
        if (!m)
            continue;
        const labels = {};
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let l;
        while ((l = re.exec(m[3] ?? '')) !== null)
            labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        const value = Number(m[4]);
        if (Number.isFinite(value))
            out.push({ name: m[1], labels, value });
    }
    return out;
}
const sameLabels = (a, b) => Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
/**
 * A registry with this run's metrics. `previous` samples (from the last textfile) are carried over: other
 * databases' series as they were, and this database's values that this run does not set (a failure keeps the
 * last success's timestamp, size and counts).
 */
function buildRegistry(prefix, facts, previous = [], opts = {}) {
    const registry = new prom_client.Registry();
    const labels = { database: facts.database, destination: facts.destination };
    for (const def of METRICS) {
        if (opts.onlyThisRun && def.value(facts) === undefined)
            continue;
        const name = `${prefix}_${def.name}`;
        const gauge = new prom_client.Gauge({ name, help: def.help, labelNames: ['database', 'destination'], registers: [registry] });
        if (!opts.onlyThisRun) {
            for (const s of previous) {
                if (s.name === name && s.labels.database !== undefined && s.labels.destination !== undefined) {
                    gauge.set({ database: s.labels.database, destination: s.labels.destination }, s.value);
                }
            }
        }
        const v = def.value(facts);
        if (v !== undefined)
            gauge.set(labels, v);
        else if (!previous.some((s) => s.name === name && sameLabels(s.labels, labels))) {
            // Nothing to report for this series yet: leave it out rather than export a made-up 0.
            gauge.remove(labels);
        }
    }
    return registry;
}
async function readTextfile(file) {
    try {
        return parseTextfile(await external_node_fs_.promises.readFile(file, 'utf8'));
    }
    catch {
        return [];
    }
}
/** Writes the textfile atomically (temp file + rename), as node_exporter's textfile collector needs. */
async function writeTextfile(file, prefix, facts, previous) {
    const text = await buildRegistry(prefix, facts, previous).metrics();
    await external_node_fs_.promises.mkdir(external_node_path_default().dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await external_node_fs_.promises.writeFile(tmp, text);
    await external_node_fs_.promises.rename(tmp, file);
    return text;
}
/**
 * Pushes to a Pushgateway: after a successful backup PUT the whole group (this run's values, the rest carried
 * over from `previous`); otherwise POST only what this run measured (a failure: success 0 and its timestamp), so
 * the group's last success survives.
 */
async function push(prefix, facts, opts, previous = []) {
    const mine = previous.filter((s) => s.labels.database === facts.database && s.labels.destination === facts.destination);
    const registry = buildRegistry(prefix, facts, mine, { onlyThisRun: facts.success !== true });
    const headers = {};
    if (opts.token)
        headers.Authorization = `Bearer ${opts.token}`;
    const gateway = new prom_client.Pushgateway(opts.url, { headers, timeout: opts.timeoutMs ?? 10_000 }, registry);
    const params = { jobName: opts.job, groupings: { database: facts.database } };
    if (facts.success === true)
        await gateway.push(params);
    else
        await gateway.pushAdd(params);
}

;// CONCATENATED MODULE: ./src/metrics/report.ts
// After a backup, verify or test-restore (success or failure): the textfile and the Pushgateway. Neither can
// change the run's result: a problem with them is a warning.



const MODES_WITH_METRICS = new Set(['backup', 'verify', 'test-restore']);
async function reportMetrics(ctx, success, outputs) {
    const { config, logger } = ctx;
    if (!MODES_WITH_METRICS.has(config.mode))
        return;
    if (!config.metricsFile && !config.pushgateway)
        return;
    const database = ctx.facts.database ?? config.source.database;
    const num = (name) => (outputs[name] !== undefined && outputs[name] !== '' && Number.isFinite(Number(outputs[name])) ? Number(outputs[name]) : undefined);
    const facts = { database, destination: config.destination.join(','), at: new Date() };
    if (config.mode === 'backup')
        facts.success = success;
    if (config.mode === 'backup') {
        for (const [key, output] of [
            ['durationSeconds', 'duration-seconds'],
            ['sizeBytes', 'size-bytes'],
            ['rows', 'rows'],
            ['vectors', 'vectors'],
            ['tables', 'tables'],
        ]) {
            const v = num(output);
            if (v !== undefined)
                facts[key] = v;
        }
        if (ctx.facts.dumpBytes !== undefined)
            facts.dumpBytes = ctx.facts.dumpBytes;
    }
    const verifying = config.mode !== 'backup' || config.verify !== 'none';
    if (verifying && outputs.verified !== undefined)
        facts.verificationSuccess = outputs.verified === 'true';
    else if (verifying && !success)
        facts.verificationSuccess = false;
    const restore = num('restore-seconds');
    if (restore !== undefined)
        facts.restoreSeconds = restore;
    const index = num('index-build-seconds');
    if (index !== undefined)
        facts.indexBuildSeconds = index;
    try {
        const scan = await scanLocal(config.backupDir, database);
        facts.totalCount = scan.backups.filter((b) => b.good).length;
        const oldest = scan.backups[scan.backups.length - 1];
        if (oldest)
            facts.oldestBackupSeconds = Math.floor(oldest.createdAt.getTime() / 1000);
    }
    catch {
        /* the count stays as it was */
    }
    const previous = config.metricsFile ? await readTextfile(config.metricsFile) : [];
    if (config.metricsFile) {
        try {
            await writeTextfile(config.metricsFile, config.metricsPrefix, facts, previous);
            logger.info(`Metrics written to ${external_node_path_default().relative(process.cwd(), config.metricsFile) || config.metricsFile}`);
        }
        catch (err) {
            logger.warning(`Could not write the metrics file ${config.metricsFile}: ${err.message}`);
        }
    }
    if (config.pushgateway) {
        try {
            await push(config.metricsPrefix, facts, config.pushgateway, previous);
            logger.info(`Metrics pushed to the Pushgateway (job ${config.pushgateway.job}, database ${database}${facts.success === false ? ', failure only' : ''})`);
        }
        catch (err) {
            logger.warning(`Pushing metrics to the Pushgateway failed (the backup's result is unchanged): ${err.message}`);
        }
    }
}
/** A failed backup, recorded by the post step when the main step could not record it itself. */
async function reportFailure(ctx) {
    await reportMetrics(ctx, false, {});
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
    ctx.facts.database = b.manifest.database;
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
    ctx.facts.database = b.manifest.database;
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
    ctx.facts.database = src.database;
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
        ctx.facts.dumpBytes = dump.dumpBytes;
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
            durationSeconds: backup_round(durationSeconds),
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
        const retention = await logger.group('Retention', () => applyRetention(ctx, server.database, { dryRun: false }));
        const deleted = retention.filter((d) => !d.keep);
        await reporter.summary(`Retention (${config.retention.days} days, keep-min ${config.retention.keepMin}): ${retention.length - deleted.length} kept` +
            (deleted.length ? `, deleted ${deleted.map((d) => `\`${d.name}\``).join(', ')}` : ', none deleted') +
            '\n');
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
function backup_round(n) {
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
    // Watch the outputs: the metrics are made from them.
    const outputs = {};
    const reporter = ctx.reporter;
    const watched = {
        ...ctx,
        reporter: {
            output: (name, value) => {
                outputs[name] = String(value);
                reporter.output(name, value);
            },
            summary: (md) => reporter.summary(md),
        },
    };
    let failure;
    try {
        await dispatch(watched);
    }
    catch (err) {
        failure = (0,connection/* databaseError */.Kz)(err, ctx.config.mode);
    }
    await reportMetrics(watched, failure === undefined, outputs);
    if (failure !== undefined)
        throw failure;
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
/** `pgvector-backup alerts [--metrics-prefix P] [--stale-hours N] [--min-free-ratio R] [--mountpoint M]` */
function alertsCommand(argv) {
    const o = { ...ALERT_DEFAULTS };
    for (let i = 0; i < argv.length; i++) {
        const [flag, inline] = argv[i].split(/=(.*)/s, 2);
        const value = inline ?? argv[++i];
        if (value === undefined)
            throw new errors/* ConfigurationError */.j1(`Option ${flag} needs a value`);
        if (flag === '--metrics-prefix') {
            if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(value))
                throw new errors/* ConfigurationError */.j1(`--metrics-prefix must be a Prometheus metric name prefix; got "${value}"`);
            o.prefix = value;
        }
        else if (flag === '--stale-hours') {
            if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0)
                throw new errors/* ConfigurationError */.j1(`--stale-hours must be a positive number; got "${value}"`);
            o.staleHours = Number(value);
        }
        else if (flag === '--min-free-ratio') {
            if (!/^0?\.\d+$/.test(value))
                throw new errors/* ConfigurationError */.j1(`--min-free-ratio must be a fraction between 0 and 1 such as 0.2; got "${value}"`);
            o.minFreeRatio = Number(value);
        }
        else if (flag === '--mountpoint')
            o.mountpoint = value;
        else
            throw new errors/* ConfigurationError */.j1(`Unknown option ${flag}; alerts takes --metrics-prefix, --stale-hours, --min-free-ratio, --mountpoint`);
    }
    return alertRules(o);
}
/** Which inputs each command reads (for --help). */
const COMMAND_INPUTS = {
    backup: ['metrics-file', 'metrics-prefix', 'pushgateway-url', 'pushgateway-token', 'pushgateway-job', 'database-url', 'backup-dir', 'format', 'compression', 'compression-level', 'verify', 'test-restore-url', 'create-roles', 'retention-days', 'keep-min', 'keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'jobs', 'lock-wait-timeout', 'pg-bin-dir', 'destination'],
    verify: ['backup', 'all', 'backup-dir', 'database-url', 'pg-bin-dir', 'metrics-file', 'metrics-prefix', 'pushgateway-url'],
    'test-restore': ['backup', 'backup-dir', 'database-url', 'test-restore-url', 'create-roles', 'jobs', 'pg-bin-dir', 'metrics-file', 'metrics-prefix', 'pushgateway-url'],
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
        `  ${'alerts'.padEnd(13)} Print Prometheus alerting rules for the metrics (--metrics-prefix, --stale-hours).`,
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
        if (argv[0] === 'alerts') {
            if (argv.includes('--help')) {
                io.stdout('Usage: pgvector-backup alerts [--metrics-prefix P] [--stale-hours 48] [--min-free-ratio 0.2] [--mountpoint /]\n\nPrints Prometheus alerting rules for the metrics.\n');
                return 0;
            }
            io.stdout(alertsCommand(argv.slice(1)));
            return 0;
        }
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
            // The old kit's METRICS_DIR held backup.prom.
            if (name === 'metrics-file' && env.METRICS_DIR)
                return external_node_path_default().join(env.METRICS_DIR, 'backup.prom');
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
            await runMode({ config, logger, facts: {}, reporter, onCancel: onCancel });
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
    if (files.state)
        env.GITHUB_STATE = files.state;
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
        const metricsFile = external_node_path_default().join(work, 'metrics', 'backup.prom');
        let status = 0;
        for (const [step, inputs] of [
            ['backup (verify: full = checksum + structure + test restore)', { mode: 'backup', verify: 'full' }],
            ['list', { mode: 'list' }],
        ]) {
            const files = { output: external_node_path_default().join(work, `${inputs.mode}.output`), summary: external_node_path_default().join(work, `${inputs.mode}.summary.md`), state: external_node_path_default().join(work, `${inputs.mode}.state`) };
            for (const f of Object.values(files))
                await external_node_fs_.promises.writeFile(f, '');
            process.stderr.write(`\n== node dist/index.js: ${step}\n`);
            const code = await runAction(actionJs, actionEnv({ ...defaultsFor(), ...inputs, 'database-url': url, 'backup-dir': backupDir, 'metrics-file': metricsFile }, files, process.env));
            const outputs = parseOutputFile(await external_node_fs_.promises.readFile(files.output, 'utf8'));
            process.stderr.write(`   exit code ${code}; outputs:\n`);
            for (const [k, v] of Object.entries(outputs))
                process.stderr.write(`     ${k} = ${v}\n`);
            process.stderr.write(`   job summary: ${files.summary}\n`);
            if (code !== 0)
                status = code;
            if (inputs.mode === 'backup' && (0,external_node_fs_.existsSync)(metricsFile)) {
                process.stderr.write(`\n== Prometheus textfile ${metricsFile}\n`);
                const text = await external_node_fs_.promises.readFile(metricsFile, 'utf8');
                process.stderr.write(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => `   ${l}`).join('\n') + '\n');
            }
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
    {
        name: 'metrics-file',
        description: 'Prometheus textfile written after backup, verify and test-restore (atomically, for node_exporter\'s textfile collector); values of earlier runs are carried over. Empty: no file.',
        default: 'metrics/backup.prom',
        env: ['PGVB_METRICS_FILE'],
    },
    {
        name: 'metrics-prefix',
        description: 'Prefix of the metric names (rag_backup keeps the old kit\'s dashboards working).',
        default: 'pgvector_backup',
    },
    {
        name: 'pushgateway-url',
        description: 'Prometheus Pushgateway to push the metrics to (http(s)://[user:password@]host:9091). Grouped by job and database. Secret. Empty: no push.',
        default: '',
        secret: true,
    },
    {
        name: 'pushgateway-token',
        description: 'Bearer token for a hosted Pushgateway. Secret.',
        default: '',
        secret: true,
    },
    {
        name: 'pushgateway-job',
        description: 'The job label of pushed metrics.',
        default: 'pgvector-backup',
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

/***/ 9907:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("cluster");

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

/***/ 8611:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("http");

/***/ }),

/***/ 5692:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("https");

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

/***/ 2987:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("perf_hooks");

/***/ }),

/***/ 932:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("process");

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

/***/ 7016:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("url");

/***/ }),

/***/ 9023:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("util");

/***/ }),

/***/ 8253:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("util/types");

/***/ }),

/***/ 1493:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("v8");

/***/ }),

/***/ 3106:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("zlib");

/***/ }),

/***/ 8352:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_diag = __nccwpck_require__(9982);
const require_NoopContextManager = __nccwpck_require__(6);
//#region src/api/context.ts
const API_NAME = "context";
const NOOP_CONTEXT_MANAGER = new require_NoopContextManager.NoopContextManager();
const NOOP_TOKEN = Object.freeze({ dispose: () => {} });
/**
* Singleton object which represents the entry point to the OpenTelemetry Context API
*
* @since 1.0.0
*/
var ContextAPI = class ContextAPI {
	/** Empty private constructor prevents end users from constructing a new instance of the API */
	constructor() {
		this._attachUnsupportedWarned = false;
	}
	/** Get the singleton instance of the Context API */
	static getInstance() {
		if (!this._instance) this._instance = new ContextAPI();
		return this._instance;
	}
	/**
	* Set the current context manager.
	*
	* @returns true if the context manager was successfully registered, else false
	*/
	setGlobalContextManager(contextManager) {
		return require_global_utils.registerGlobal(API_NAME, contextManager, require_diag.DiagAPI.instance());
	}
	/**
	* Get the currently active context
	*/
	active() {
		return this._getContextManager().active();
	}
	/**
	* Execute a function with an active context
	*
	* @param context context to be active during function execution
	* @param fn function to execute in a context
	* @param thisArg optional receiver to be used for calling fn
	* @param args optional arguments forwarded to fn
	*/
	with(context, fn, thisArg, ...args) {
		return this._getContextManager().with(context, fn, thisArg, ...args);
	}
	/**
	* Bind a context to a target function or event emitter
	*
	* @param context context to bind to the event emitter or function. Defaults to the currently active context
	* @param target function or event emitter to bind
	*/
	bind(context, target) {
		return this._getContextManager().bind(context, target);
	}
	/**
	* Imperatively sets `context` as active, returning a {@link ContextManagementToken} whose
	* {@link ContextManagementToken.dispose} restores the previous context.
	*
	* This is a delicate, low-level API - prefer {@link with}/{@link bind}, which
	* restore context automatically. Use `attach` only to bridge callback
	* boundaries that `with` cannot wrap. Call `token.dispose()` when the
	* operation is done.
	*
	* **Caveat for async functions:** If called inside an async function before
	* the first `await`, the context change may leak into the caller's context
	* and remain active there. Prefer {@link with} for async code.
	*
	* Support is best-effort and varies by the active ContextManager (see
	* {@link ContextManager.attach}); if it does not implement `attach`, this logs
	* a warning and returns a no-op token.
	*
	* @param context The Context to attach
	* @returns A {@link ContextManagementToken} whose dispose() restores the previous Context
	* @since 1.10.0
	* @experimental This API is experimental and may change in minor releases without prior notice.
	*/
	attach(context) {
		const contextManager = this._getContextManager();
		if (contextManager.attach) return contextManager.attach(context);
		if (!this._attachUnsupportedWarned) {
			this._attachUnsupportedWarned = true;
			require_diag.DiagAPI.instance().warn("The current ContextManager does not implement attach(). The context will not be attached. Use a ContextManager that supports attach() (e.g. AsyncLocalStorageContextManager) or use with()/bind() instead.");
		}
		return NOOP_TOKEN;
	}
	_getContextManager() {
		return require_global_utils.getGlobal(API_NAME) || NOOP_CONTEXT_MANAGER;
	}
	/** Disable and remove the global context manager */
	disable() {
		this._getContextManager().disable();
		require_global_utils.unregisterGlobal(API_NAME, require_diag.DiagAPI.instance());
	}
};
//#endregion
exports.ContextAPI = ContextAPI;

//# sourceMappingURL=context.cjs.map

/***/ }),

/***/ 9982:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_ComponentLogger = __nccwpck_require__(1977);
__nccwpck_require__(4351);
const require_logLevelLogger = __nccwpck_require__(1714);
//#region src/api/diag.ts
const API_NAME = "diag";
/**
* Singleton object which represents the entry point to the OpenTelemetry internal
* diagnostic API
*
* @since 1.0.0
*/
var DiagAPI = class DiagAPI {
	/** Get the singleton instance of the DiagAPI API */
	static instance() {
		if (!this._instance) this._instance = new DiagAPI();
		return this._instance;
	}
	/**
	* Private internal constructor
	* @private
	*/
	constructor() {
		function _logProxy(funcName) {
			return function(...args) {
				const logger = require_global_utils.getGlobal("diag");
				if (!logger) return;
				return logger[funcName](...args);
			};
		}
		const self = this;
		const setLogger = (logger, optionsOrLogLevel = { logLevel: 60 }) => {
			var _optionsOrLogLevel$lo;
			if (logger === self) {
				var _err$stack;
				const err = /* @__PURE__ */ new Error("Cannot use diag as the logger for itself. Please use a DiagLogger implementation like ConsoleDiagLogger or a custom implementation");
				self.error((_err$stack = err.stack) !== null && _err$stack !== void 0 ? _err$stack : err.message);
				return false;
			}
			if (typeof optionsOrLogLevel === "number") optionsOrLogLevel = { logLevel: optionsOrLogLevel };
			const oldLogger = require_global_utils.getGlobal("diag");
			const newLogger = require_logLevelLogger.createLogLevelDiagLogger((_optionsOrLogLevel$lo = optionsOrLogLevel.logLevel) !== null && _optionsOrLogLevel$lo !== void 0 ? _optionsOrLogLevel$lo : 60, logger);
			if (oldLogger && !optionsOrLogLevel.suppressOverrideMessage) {
				var _Error$stack;
				const stack = (_Error$stack = (/* @__PURE__ */ new Error()).stack) !== null && _Error$stack !== void 0 ? _Error$stack : "<failed to generate stacktrace>";
				oldLogger.warn(`Current logger will be overwritten from ${stack}`);
				newLogger.warn(`Current logger will overwrite one already registered from ${stack}`);
			}
			return require_global_utils.registerGlobal("diag", newLogger, self, true);
		};
		self.setLogger = setLogger;
		self.disable = () => {
			require_global_utils.unregisterGlobal(API_NAME, self);
		};
		self.createComponentLogger = (options) => {
			return new require_ComponentLogger.DiagComponentLogger(options);
		};
		self.verbose = _logProxy("verbose");
		self.debug = _logProxy("debug");
		self.info = _logProxy("info");
		self.warn = _logProxy("warn");
		self.error = _logProxy("error");
	}
};
//#endregion
exports.DiagAPI = DiagAPI;

//# sourceMappingURL=diag.cjs.map

/***/ }),

/***/ 9102:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_diag = __nccwpck_require__(9982);
const require_ProxyLoggerProvider = __nccwpck_require__(9035);
//#region src/api/logs.ts
const API_NAME = "logs";
/**
* Singleton object which represents the entry point to the OpenTelemetry Logs API
*
* @since 1.10.0
*/
var LogsAPI = class LogsAPI {
	/** Empty private constructor prevents end users from constructing a new instance of the API */
	constructor() {
		this._proxyLoggerProvider = new require_ProxyLoggerProvider.ProxyLoggerProvider();
	}
	/** Get the singleton instance of the Logs API */
	static getInstance() {
		if (!this._instance) this._instance = new LogsAPI();
		return this._instance;
	}
	setGlobalLoggerProvider(provider) {
		const success = require_global_utils.registerGlobal(API_NAME, provider, require_diag.DiagAPI.instance());
		if (success) this._proxyLoggerProvider._setDelegate(provider);
		return success;
	}
	/**
	* Returns the global logger provider.
	*
	* @returns LoggerProvider
	*/
	getLoggerProvider() {
		return require_global_utils.getGlobal(API_NAME) || this._proxyLoggerProvider;
	}
	/**
	* Returns a Logger, creating one if one with the given name, version,
	* schemaUrl, and attributes is not already created.
	*
	* Getting a Logger may be expensive, especially when `attributes` are
	* provided. Reuse Logger instances where possible instead of calling
	* `getLogger()` on hot paths.
	*
	* @param name The name of the logger or instrumentation library.
	* @param version The version of the logger or instrumentation library.
	* @param options The options of the logger or instrumentation library.
	* @returns {@link Logger}
	*/
	getLogger(name, version, options) {
		return this.getLoggerProvider().getLogger(name, version, options);
	}
	/** Remove the global logger provider */
	disable() {
		require_global_utils.unregisterGlobal(API_NAME, require_diag.DiagAPI.instance());
		this._proxyLoggerProvider = new require_ProxyLoggerProvider.ProxyLoggerProvider();
	}
};
//#endregion
exports.e = LogsAPI;

//# sourceMappingURL=logs.cjs.map

/***/ }),

/***/ 3510:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_diag = __nccwpck_require__(9982);
const require_NoopMeterProvider = __nccwpck_require__(7554);
//#region src/api/metrics.ts
const API_NAME = "metrics";
/**
* Singleton object which represents the entry point to the OpenTelemetry Metrics API
*
* @since 1.4.1
*/
var MetricsAPI = class MetricsAPI {
	/** Empty private constructor prevents end users from constructing a new instance of the API */
	constructor() {}
	/** Get the singleton instance of the Metrics API */
	static getInstance() {
		if (!this._instance) this._instance = new MetricsAPI();
		return this._instance;
	}
	/**
	* Set the current global meter provider.
	* Returns true if the meter provider was successfully registered, else false.
	*/
	setGlobalMeterProvider(provider) {
		return require_global_utils.registerGlobal(API_NAME, provider, require_diag.DiagAPI.instance());
	}
	/**
	* Returns the global meter provider.
	*/
	getMeterProvider() {
		return require_global_utils.getGlobal(API_NAME) || require_NoopMeterProvider.NOOP_METER_PROVIDER;
	}
	/**
	* Returns a meter from the global meter provider.
	*/
	getMeter(name, version, options) {
		return this.getMeterProvider().getMeter(name, version, options);
	}
	/** Remove the global meter provider */
	disable() {
		require_global_utils.unregisterGlobal(API_NAME, require_diag.DiagAPI.instance());
	}
};
//#endregion
exports.k = MetricsAPI;

//# sourceMappingURL=metrics.cjs.map

/***/ }),

/***/ 3007:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_diag = __nccwpck_require__(9982);
const require_utils = __nccwpck_require__(5196);
const require_TextMapPropagator = __nccwpck_require__(3565);
const require_NoopTextMapPropagator = __nccwpck_require__(345);
const require_context_helpers = __nccwpck_require__(7510);
//#region src/api/propagation.ts
const API_NAME = "propagation";
const NOOP_TEXT_MAP_PROPAGATOR = new require_NoopTextMapPropagator.NoopTextMapPropagator();
/**
* Singleton object which represents the entry point to the OpenTelemetry Propagation API
*
* @since 1.0.0
*/
var PropagationAPI = class PropagationAPI {
	/** Empty private constructor prevents end users from constructing a new instance of the API */
	constructor() {
		this.createBaggage = require_utils.createBaggage;
		this.getBaggage = require_context_helpers.getBaggage;
		this.getActiveBaggage = require_context_helpers.getActiveBaggage;
		this.setBaggage = require_context_helpers.setBaggage;
		this.deleteBaggage = require_context_helpers.deleteBaggage;
	}
	/** Get the singleton instance of the Propagator API */
	static getInstance() {
		if (!this._instance) this._instance = new PropagationAPI();
		return this._instance;
	}
	/**
	* Set the current propagator.
	*
	* @returns true if the propagator was successfully registered, else false
	*/
	setGlobalPropagator(propagator) {
		return require_global_utils.registerGlobal(API_NAME, propagator, require_diag.DiagAPI.instance());
	}
	/**
	* Inject context into a carrier to be propagated inter-process
	*
	* @param context Context carrying tracing data to inject
	* @param carrier carrier to inject context into
	* @param setter Function used to set values on the carrier
	*/
	inject(context, carrier, setter = require_TextMapPropagator.defaultTextMapSetter) {
		return this._getGlobalPropagator().inject(context, carrier, setter);
	}
	/**
	* Extract context from a carrier
	*
	* @param context Context which the newly created context will inherit from
	* @param carrier Carrier to extract context from
	* @param getter Function used to extract keys from a carrier
	*/
	extract(context, carrier, getter = require_TextMapPropagator.defaultTextMapGetter) {
		return this._getGlobalPropagator().extract(context, carrier, getter);
	}
	/**
	* Return a list of all fields which may be used by the propagator.
	*/
	fields() {
		return this._getGlobalPropagator().fields();
	}
	/** Remove the global propagator */
	disable() {
		require_global_utils.unregisterGlobal(API_NAME, require_diag.DiagAPI.instance());
	}
	_getGlobalPropagator() {
		return require_global_utils.getGlobal(API_NAME) || NOOP_TEXT_MAP_PROPAGATOR;
	}
};
//#endregion
exports.R = PropagationAPI;

//# sourceMappingURL=propagation.cjs.map

/***/ }),

/***/ 5446:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
const require_diag = __nccwpck_require__(9982);
const require_context_utils = __nccwpck_require__(3779);
const require_spancontext_utils = __nccwpck_require__(3723);
const require_ProxyTracerProvider = __nccwpck_require__(5930);
//#region src/api/trace.ts
const API_NAME = "trace";
/**
* Singleton object which represents the entry point to the OpenTelemetry Tracing API
*
* @since 1.0.0
*/
var TraceAPI = class TraceAPI {
	/** Empty private constructor prevents end users from constructing a new instance of the API */
	constructor() {
		this._proxyTracerProvider = new require_ProxyTracerProvider.ProxyTracerProvider();
		this.wrapSpanContext = require_spancontext_utils.wrapSpanContext;
		this.isSpanContextValid = require_spancontext_utils.isSpanContextValid;
		this.deleteSpan = require_context_utils.deleteSpan;
		this.getSpan = require_context_utils.getSpan;
		this.getActiveSpan = require_context_utils.getActiveSpan;
		this.getSpanContext = require_context_utils.getSpanContext;
		this.setSpan = require_context_utils.setSpan;
		this.setSpanContext = require_context_utils.setSpanContext;
	}
	/** Get the singleton instance of the Trace API */
	static getInstance() {
		if (!this._instance) this._instance = new TraceAPI();
		return this._instance;
	}
	/**
	* Set the current global tracer.
	*
	* @returns true if the tracer provider was successfully registered, else false
	*/
	setGlobalTracerProvider(provider) {
		const success = require_global_utils.registerGlobal(API_NAME, this._proxyTracerProvider, require_diag.DiagAPI.instance());
		if (success) this._proxyTracerProvider.setDelegate(provider);
		return success;
	}
	/**
	* Returns the global tracer provider.
	*/
	getTracerProvider() {
		return require_global_utils.getGlobal(API_NAME) || this._proxyTracerProvider;
	}
	/**
	* Returns a tracer from the global tracer provider.
	*/
	getTracer(name, version) {
		return this.getTracerProvider().getTracer(name, version);
	}
	/** Remove the global tracer provider */
	disable() {
		require_global_utils.unregisterGlobal(API_NAME, require_diag.DiagAPI.instance());
		this._proxyTracerProvider = new require_ProxyTracerProvider.ProxyTracerProvider();
	}
};
//#endregion
exports.C = TraceAPI;

//# sourceMappingURL=trace.cjs.map

/***/ }),

/***/ 7510:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_context = __nccwpck_require__(3041);
const require_context$1 = __nccwpck_require__(8352);
//#region src/baggage/context-helpers.ts
/**
* Baggage key
*/
const BAGGAGE_KEY = require_context.createContextKey("OpenTelemetry Baggage Key");
/**
* Retrieve the current baggage from the given context
*
* @param {Context} Context that manage all context values
* @returns {Baggage} Extracted baggage from the context
*/
function getBaggage(context) {
	return context.getValue(BAGGAGE_KEY) || void 0;
}
/**
* Retrieve the current baggage from the active/current context
*
* @returns {Baggage} Extracted baggage from the context
*/
function getActiveBaggage() {
	return getBaggage(require_context$1.ContextAPI.getInstance().active());
}
/**
* Store a baggage in the given context
*
* @param {Context} Context that manage all context values
* @param {Baggage} baggage that will be set in the actual context
*/
function setBaggage(context, baggage) {
	return context.setValue(BAGGAGE_KEY, baggage);
}
/**
* Delete the baggage stored in the given context
*
* @param {Context} Context that manage all context values
*/
function deleteBaggage(context) {
	return context.deleteValue(BAGGAGE_KEY);
}
//#endregion
exports.deleteBaggage = deleteBaggage;
exports.getActiveBaggage = getActiveBaggage;
exports.getBaggage = getBaggage;
exports.setBaggage = setBaggage;

//# sourceMappingURL=context-helpers.cjs.map

/***/ }),

/***/ 176:
/***/ ((__unused_webpack_module, exports) => {

//#region src/baggage/internal/baggage-impl.ts
var BaggageImpl = class BaggageImpl {
	constructor(entries) {
		this._entries = entries ? new Map(entries) : /* @__PURE__ */ new Map();
	}
	getEntry(key) {
		const entry = this._entries.get(key);
		if (!entry) return;
		return Object.assign({}, entry);
	}
	getAllEntries() {
		return Array.from(this._entries.entries());
	}
	setEntry(key, entry) {
		const newBaggage = new BaggageImpl(this._entries);
		newBaggage._entries.set(key, entry);
		return newBaggage;
	}
	removeEntry(key) {
		const newBaggage = new BaggageImpl(this._entries);
		newBaggage._entries.delete(key);
		return newBaggage;
	}
	removeEntries(...keys) {
		const newBaggage = new BaggageImpl(this._entries);
		for (const key of keys) newBaggage._entries.delete(key);
		return newBaggage;
	}
	clear() {
		return new BaggageImpl();
	}
};
//#endregion
exports.BaggageImpl = BaggageImpl;

//# sourceMappingURL=baggage-impl.cjs.map

/***/ }),

/***/ 9333:
/***/ ((__unused_webpack_module, exports) => {

//#region src/baggage/internal/symbol.ts
/**
* Symbol used to make BaggageEntryMetadata an opaque type
*/
const baggageEntryMetadataSymbol = Symbol("BaggageEntryMetadata");
//#endregion
exports.baggageEntryMetadataSymbol = baggageEntryMetadataSymbol;

//# sourceMappingURL=symbol.cjs.map

/***/ }),

/***/ 5196:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_diag = __nccwpck_require__(9982);
const require_baggage_impl = __nccwpck_require__(176);
const require_symbol = __nccwpck_require__(9333);
//#region src/baggage/utils.ts
const diag = require_diag.DiagAPI.instance();
/**
* Create a new Baggage with optional entries
*
* @param entries An array of baggage entries the new baggage should contain
*/
function createBaggage(entries = {}) {
	return new require_baggage_impl.BaggageImpl(new Map(Object.entries(entries)));
}
/**
* Create a serializable BaggageEntryMetadata object from a string.
*
* @param str string metadata. Format is currently not defined by the spec and has no special meaning.
*
* @since 1.0.0
*/
function baggageEntryMetadataFromString(str) {
	if (typeof str !== "string") {
		diag.error(`Cannot create baggage metadata from unknown type: ${typeof str}`);
		str = "";
	}
	return {
		__TYPE__: require_symbol.baggageEntryMetadataSymbol,
		toString() {
			return str;
		}
	};
}
//#endregion
exports.baggageEntryMetadataFromString = baggageEntryMetadataFromString;
exports.createBaggage = createBaggage;

//# sourceMappingURL=utils.cjs.map

/***/ }),

/***/ 2534:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/context-api.ts
/**
* Entrypoint for context API
* @since 1.0.0
*/
const context = (__nccwpck_require__(8352).ContextAPI).getInstance();
//#endregion
exports.context = context;

//# sourceMappingURL=context-api.cjs.map

/***/ }),

/***/ 6:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_context = __nccwpck_require__(3041);
//#region src/context/NoopContextManager.ts
var NoopContextManager = class {
	active() {
		return require_context.ROOT_CONTEXT;
	}
	with(_context, fn, thisArg, ...args) {
		return fn.call(thisArg, ...args);
	}
	bind(_context, target) {
		return target;
	}
	enable() {
		return this;
	}
	disable() {
		return this;
	}
	/** @experimental This API is experimental and may change in minor releases without prior notice. */
	attach(_context) {
		return { dispose() {} };
	}
};
//#endregion
exports.NoopContextManager = NoopContextManager;

//# sourceMappingURL=NoopContextManager.cjs.map

/***/ }),

/***/ 3041:
/***/ ((__unused_webpack_module, exports) => {

//#region src/context/context.ts
/**
* Get a key to uniquely identify a context value
*
* @since 1.0.0
*/
function createContextKey(description) {
	return Symbol.for(description);
}
/**
* The root context is used as the default parent context when there is no active context
*
* @since 1.0.0
*/
const ROOT_CONTEXT = new class BaseContext {
	/**
	* Construct a new context which inherits values from an optional parent context.
	*
	* @param parentContext a context from which to inherit values
	*/
	constructor(parentContext) {
		const self = this;
		self._currentContext = parentContext ? new Map(parentContext) : /* @__PURE__ */ new Map();
		self.getValue = (key) => self._currentContext.get(key);
		self.setValue = (key, value) => {
			const context = new BaseContext(self._currentContext);
			context._currentContext.set(key, value);
			return context;
		};
		self.deleteValue = (key) => {
			const context = new BaseContext(self._currentContext);
			context._currentContext.delete(key);
			return context;
		};
	}
}();
//#endregion
exports.ROOT_CONTEXT = ROOT_CONTEXT;
exports.createContextKey = createContextKey;

//# sourceMappingURL=context.cjs.map

/***/ }),

/***/ 1778:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/diag-api.ts
/**
* Entrypoint for Diag API.
* Defines Diagnostic handler used for internal diagnostic logging operations.
* The default provides a Noop DiagLogger implementation which may be changed via the
* diag.setLogger(logger: DiagLogger) function.
*
* @since 1.0.0
*/
const diag = (__nccwpck_require__(9982).DiagAPI).instance();
//#endregion
exports.diag = diag;

//# sourceMappingURL=diag-api.cjs.map

/***/ }),

/***/ 1977:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_global_utils = __nccwpck_require__(9227);
//#region src/diag/ComponentLogger.ts
/**
* Component Logger which is meant to be used as part of any component which
* will add automatically additional namespace in front of the log message.
* It will then forward all message to global diag logger
* @example
* const cLogger = diag.createComponentLogger({ namespace: '@opentelemetry/instrumentation-http' });
* cLogger.debug('test');
* // @opentelemetry/instrumentation-http test
*/
var DiagComponentLogger = class {
	constructor(props) {
		this._namespace = props.namespace || "DiagComponentLogger";
	}
	debug(...args) {
		return logProxy("debug", this._namespace, args);
	}
	error(...args) {
		return logProxy("error", this._namespace, args);
	}
	info(...args) {
		return logProxy("info", this._namespace, args);
	}
	warn(...args) {
		return logProxy("warn", this._namespace, args);
	}
	verbose(...args) {
		return logProxy("verbose", this._namespace, args);
	}
};
function logProxy(funcName, namespace, args) {
	const logger = require_global_utils.getGlobal("diag");
	if (!logger) return;
	return logger[funcName](namespace, ...args);
}
//#endregion
exports.DiagComponentLogger = DiagComponentLogger;

//# sourceMappingURL=ComponentLogger.cjs.map

/***/ }),

/***/ 9199:
/***/ ((__unused_webpack_module, exports) => {

//#region src/diag/consoleLogger.ts
const consoleMap = [
	{
		n: "error",
		c: "error"
	},
	{
		n: "warn",
		c: "warn"
	},
	{
		n: "info",
		c: "info"
	},
	{
		n: "debug",
		c: "debug"
	},
	{
		n: "verbose",
		c: "trace"
	}
];
const _originalConsoleMethods = {};
if (typeof console !== "undefined") {
	for (const key of [
		"error",
		"warn",
		"info",
		"debug",
		"trace",
		"log"
	]) if (typeof console[key] === "function") _originalConsoleMethods[key] = console[key];
}
/**
* A simple Immutable Console based diagnostic logger which will output any messages to the Console.
* If you want to limit the amount of logging to a specific level or lower use the
* {@link createLogLevelDiagLogger}
*
* @since 1.0.0
*/
var DiagConsoleLogger = class {
	constructor() {
		function _consoleFunc(funcName) {
			return function(...args) {
				let theFunc = _originalConsoleMethods[funcName];
				if (typeof theFunc !== "function") theFunc = _originalConsoleMethods["log"];
				if (typeof theFunc !== "function" && console) {
					theFunc = console[funcName];
					if (typeof theFunc !== "function") theFunc = console.log;
				}
				if (typeof theFunc === "function") return theFunc.apply(console, args);
			};
		}
		for (let i = 0; i < consoleMap.length; i++) this[consoleMap[i].n] = _consoleFunc(consoleMap[i].c);
	}
};
//#endregion
exports.DiagConsoleLogger = DiagConsoleLogger;
exports._originalConsoleMethods = _originalConsoleMethods;

//# sourceMappingURL=consoleLogger.cjs.map

/***/ }),

/***/ 1714:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

__nccwpck_require__(4351);
//#region src/diag/internal/logLevelLogger.ts
function createLogLevelDiagLogger(maxLevel, logger) {
	if (maxLevel < 0) maxLevel = 0;
	else if (maxLevel > 9999) maxLevel = 9999;
	logger = logger || {};
	function _filterFunc(funcName, theLevel) {
		const theFunc = logger[funcName];
		if (typeof theFunc === "function" && maxLevel >= theLevel) return theFunc.bind(logger);
		return function() {};
	}
	return {
		error: _filterFunc("error", 30),
		warn: _filterFunc("warn", 50),
		info: _filterFunc("info", 60),
		debug: _filterFunc("debug", 70),
		verbose: _filterFunc("verbose", 80)
	};
}
//#endregion
exports.createLogLevelDiagLogger = createLogLevelDiagLogger;

//# sourceMappingURL=logLevelLogger.cjs.map

/***/ }),

/***/ 4351:
/***/ ((__unused_webpack_module, exports) => {

//#region src/diag/types.ts
/**
* Defines the available internal logging levels for the diagnostic logger, the numeric values
* of the levels are defined to match the original values from the initial LogLevel to avoid
* compatibility/migration issues for any implementation that assume the numeric ordering.
*
* @since 1.0.0
*/
let DiagLogLevel = /* @__PURE__ */ function(DiagLogLevel) {
	/** Diagnostic Logging level setting to disable all logging (except and forced logs) */
	DiagLogLevel[DiagLogLevel["NONE"] = 0] = "NONE";
	/** Identifies an error scenario */
	DiagLogLevel[DiagLogLevel["ERROR"] = 30] = "ERROR";
	/** Identifies a warning scenario */
	DiagLogLevel[DiagLogLevel["WARN"] = 50] = "WARN";
	/** General informational log message */
	DiagLogLevel[DiagLogLevel["INFO"] = 60] = "INFO";
	/** General debug log message */
	DiagLogLevel[DiagLogLevel["DEBUG"] = 70] = "DEBUG";
	/**
	* Detailed trace level logging should only be used for development, should only be set
	* in a development environment.
	*/
	DiagLogLevel[DiagLogLevel["VERBOSE"] = 80] = "VERBOSE";
	/** Used to set the logging level to include all logging */
	DiagLogLevel[DiagLogLevel["ALL"] = 9999] = "ALL";
	return DiagLogLevel;
}({});
//#endregion
exports.DiagLogLevel = DiagLogLevel;

//# sourceMappingURL=types.cjs.map

/***/ }),

/***/ 1408:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

Object.defineProperties(exports, {
	__esModule: { value: true },
	[Symbol.toStringTag]: { value: "Module" }
});
const require_types = __nccwpck_require__(4351);
const require_utils = __nccwpck_require__(5196);
const require_context = __nccwpck_require__(3041);
const require_consoleLogger = __nccwpck_require__(9199);
const require_NoopMeter = __nccwpck_require__(1677);
const require_Metric = __nccwpck_require__(626);
const require_NoopLogger = __nccwpck_require__(9140);
const require_LogRecord = __nccwpck_require__(8973);
const require_TextMapPropagator = __nccwpck_require__(3565);
const require_trace_flags = __nccwpck_require__(3245);
const require_invalid_span_constants = __nccwpck_require__(3552);
const require_spancontext_utils = __nccwpck_require__(3723);
const require_ProxyTracer = __nccwpck_require__(3861);
const require_span_kind = __nccwpck_require__(7483);
const require_status = __nccwpck_require__(7632);
const require_utils$1 = __nccwpck_require__(2219);
const require_ProxyTracerProvider = __nccwpck_require__(5930);
const require_SamplingResult = __nccwpck_require__(5346);
const require_context_api = __nccwpck_require__(2534);
const require_diag_api = __nccwpck_require__(1778);
const require_logs_api = __nccwpck_require__(5662);
const require_metrics_api = __nccwpck_require__(7876);
const require_propagation_api = __nccwpck_require__(7045);
const require_trace_api = __nccwpck_require__(8936);
//#region src/index.ts
var src_default = {
	context: require_context_api.context,
	diag: require_diag_api.diag,
	logs: require_logs_api.logs,
	metrics: require_metrics_api.metrics,
	propagation: require_propagation_api.propagation,
	trace: require_trace_api.trace
};
//#endregion
exports.DiagConsoleLogger = require_consoleLogger.DiagConsoleLogger;
exports.DiagLogLevel = require_types.DiagLogLevel;
exports.INVALID_SPANID = require_invalid_span_constants.INVALID_SPANID;
exports.INVALID_SPAN_CONTEXT = require_invalid_span_constants.INVALID_SPAN_CONTEXT;
exports.INVALID_TRACEID = require_invalid_span_constants.INVALID_TRACEID;
exports.ProxyTracer = require_ProxyTracer.ProxyTracer;
exports.ProxyTracerProvider = require_ProxyTracerProvider.ProxyTracerProvider;
exports.ROOT_CONTEXT = require_context.ROOT_CONTEXT;
exports.SamplingDecision = require_SamplingResult.SamplingDecision;
exports.SeverityNumber = require_LogRecord.SeverityNumber;
exports.SpanKind = require_span_kind.SpanKind;
exports.SpanStatusCode = require_status.SpanStatusCode;
exports.TraceFlags = require_trace_flags.TraceFlags;
exports.ValueType = require_Metric.ValueType;
exports.baggageEntryMetadataFromString = require_utils.baggageEntryMetadataFromString;
exports.context = require_context_api.context;
exports.createContextKey = require_context.createContextKey;
exports.createNoopLogger = require_NoopLogger.createNoopLogger;
exports.createNoopMeter = require_NoopMeter.createNoopMeter;
exports.createTraceState = require_utils$1.createTraceState;
exports["default"] = src_default;
exports.defaultTextMapGetter = require_TextMapPropagator.defaultTextMapGetter;
exports.defaultTextMapSetter = require_TextMapPropagator.defaultTextMapSetter;
exports.diag = require_diag_api.diag;
exports.isSpanContextValid = require_spancontext_utils.isSpanContextValid;
exports.isValidSpanId = require_spancontext_utils.isValidSpanId;
exports.isValidTraceId = require_spancontext_utils.isValidTraceId;
exports.logs = require_logs_api.logs;
exports.metrics = require_metrics_api.metrics;
exports.propagation = require_propagation_api.propagation;
exports.trace = require_trace_api.trace;

//# sourceMappingURL=index.cjs.map

/***/ }),

/***/ 9227:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_version = __nccwpck_require__(9128);
const require_semver = __nccwpck_require__(1418);
//#region src/internal/global-utils.ts
const major = require_version.VERSION.split(".")[0];
const GLOBAL_OPENTELEMETRY_API_KEY = Symbol.for(`opentelemetry.js.api.${major}`);
const _global = typeof globalThis === "object" ? globalThis : typeof self === "object" ? self : typeof window === "object" ? window : typeof global === "object" ? global : {};
function _makeGlobalApi() {
	return Object.defineProperty({}, "version", {
		value: require_version.VERSION,
		enumerable: true,
		writable: false,
		configurable: false
	});
}
function registerGlobal(type, instance, diag, allowOverride = false) {
	var _global$GLOBAL_OPENTE;
	const api = _global[GLOBAL_OPENTELEMETRY_API_KEY] = (_global$GLOBAL_OPENTE = _global[GLOBAL_OPENTELEMETRY_API_KEY]) !== null && _global$GLOBAL_OPENTE !== void 0 ? _global$GLOBAL_OPENTE : _makeGlobalApi();
	if (!allowOverride && api[type]) {
		const err = /* @__PURE__ */ new Error(`@opentelemetry/api: Attempted duplicate registration of API: ${type}`);
		diag.error(err.stack || err.message);
		return false;
	}
	if (api.version !== "1.10.0") {
		const err = /* @__PURE__ */ new Error(`@opentelemetry/api: Registration of version v${api.version} for ${type} does not match previously registered API v${require_version.VERSION}`);
		diag.error(err.stack || err.message);
		return false;
	}
	api[type] = instance;
	diag.debug(`@opentelemetry/api: Registered a global for ${type} v${require_version.VERSION}.`);
	return true;
}
let _compatibleGlobalApi;
function getGlobal(type) {
	const api = _global[GLOBAL_OPENTELEMETRY_API_KEY];
	if (api == null) return;
	if (api !== _compatibleGlobalApi) {
		if (!api.version || !require_semver.isCompatible(api.version)) return;
		_compatibleGlobalApi = api;
	}
	return api[type];
}
function unregisterGlobal(type, diag) {
	diag.debug(`@opentelemetry/api: Unregistering a global for ${type} v${require_version.VERSION}.`);
	const api = _global[GLOBAL_OPENTELEMETRY_API_KEY];
	if (api) delete api[type];
}
//#endregion
exports.getGlobal = getGlobal;
exports.registerGlobal = registerGlobal;
exports.unregisterGlobal = unregisterGlobal;

//# sourceMappingURL=global-utils.cjs.map

/***/ }),

/***/ 1418:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_version = __nccwpck_require__(9128);
//#region src/internal/semver.ts
const re = /^(\d+)\.(\d+)\.(\d+)(-(.+))?$/;
/**
* Create a function to test an API version to see if it is compatible with the provided ownVersion.
*
* The returned function has the following semantics:
* - Exact match is always compatible
* - Major versions must match exactly
*    - 1.x package cannot use global 2.x package
*    - 2.x package cannot use global 1.x package
* - The minor version of the API module requesting access to the global API must be less than or equal to the minor version of this API
*    - 1.3 package may use 1.4 global because the later global contains all functions 1.3 expects
*    - 1.4 package may NOT use 1.3 global because it may try to call functions which don't exist on 1.3
* - If the major version is 0, the minor version is treated as the major and the patch is treated as the minor
* - Patch and build tag differences are not considered at this time
*
* @param ownVersion version which should be checked against
*/
function _makeCompatibilityCheck(ownVersion) {
	const acceptedVersions = /* @__PURE__ */ new Set([ownVersion]);
	const rejectedVersions = /* @__PURE__ */ new Set();
	const myVersionMatch = ownVersion.match(re);
	if (!myVersionMatch) return () => false;
	const ownVersionParsed = {
		major: +myVersionMatch[1],
		minor: +myVersionMatch[2],
		patch: +myVersionMatch[3],
		prerelease: myVersionMatch[4]
	};
	if (ownVersionParsed.prerelease != null) return function isExactmatch(globalVersion) {
		return globalVersion === ownVersion;
	};
	function _reject(v) {
		rejectedVersions.add(v);
		return false;
	}
	function _accept(v) {
		acceptedVersions.add(v);
		return true;
	}
	return function isCompatible(globalVersion) {
		if (acceptedVersions.has(globalVersion)) return true;
		if (rejectedVersions.has(globalVersion)) return false;
		const globalVersionMatch = globalVersion.match(re);
		if (!globalVersionMatch) return _reject(globalVersion);
		const globalVersionParsed = {
			major: +globalVersionMatch[1],
			minor: +globalVersionMatch[2],
			patch: +globalVersionMatch[3],
			prerelease: globalVersionMatch[4]
		};
		if (globalVersionParsed.prerelease != null) return _reject(globalVersion);
		if (ownVersionParsed.major !== globalVersionParsed.major) return _reject(globalVersion);
		if (ownVersionParsed.major === 0) {
			if (ownVersionParsed.minor === globalVersionParsed.minor && ownVersionParsed.patch <= globalVersionParsed.patch) return _accept(globalVersion);
			return _reject(globalVersion);
		}
		if (ownVersionParsed.minor <= globalVersionParsed.minor) return _accept(globalVersion);
		return _reject(globalVersion);
	};
}
/**
* Test an API version to see if it is compatible with this API.
*
* - Exact match is always compatible
* - Major versions must match exactly
*    - 1.x package cannot use global 2.x package
*    - 2.x package cannot use global 1.x package
* - The minor version of the API module requesting access to the global API must be less than or equal to the minor version of this API
*    - 1.3 package may use 1.4 global because the later global contains all functions 1.3 expects
*    - 1.4 package may NOT use 1.3 global because it may try to call functions which don't exist on 1.3
* - If the major version is 0, the minor version is treated as the major and the patch is treated as the minor
* - Patch and build tag differences are not considered at this time
*
* @param version version of the API requesting an instance of the global API
*/
const isCompatible = _makeCompatibilityCheck(require_version.VERSION);
//#endregion
exports._makeCompatibilityCheck = _makeCompatibilityCheck;
exports.isCompatible = isCompatible;

//# sourceMappingURL=semver.cjs.map

/***/ }),

/***/ 5662:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/logs-api.ts
/**
* Entrypoint for logs API
*
* @since 1.10.0
*/
const logs = (__nccwpck_require__(9102)/* .LogsAPI */ .e).getInstance();
//#endregion
exports.logs = logs;

//# sourceMappingURL=logs-api.cjs.map

/***/ }),

/***/ 8973:
/***/ ((__unused_webpack_module, exports) => {

//#region src/logs/LogRecord.ts
let SeverityNumber = /* @__PURE__ */ function(SeverityNumber) {
	SeverityNumber[SeverityNumber["UNSPECIFIED"] = 0] = "UNSPECIFIED";
	SeverityNumber[SeverityNumber["TRACE"] = 1] = "TRACE";
	SeverityNumber[SeverityNumber["TRACE2"] = 2] = "TRACE2";
	SeverityNumber[SeverityNumber["TRACE3"] = 3] = "TRACE3";
	SeverityNumber[SeverityNumber["TRACE4"] = 4] = "TRACE4";
	SeverityNumber[SeverityNumber["DEBUG"] = 5] = "DEBUG";
	SeverityNumber[SeverityNumber["DEBUG2"] = 6] = "DEBUG2";
	SeverityNumber[SeverityNumber["DEBUG3"] = 7] = "DEBUG3";
	SeverityNumber[SeverityNumber["DEBUG4"] = 8] = "DEBUG4";
	SeverityNumber[SeverityNumber["INFO"] = 9] = "INFO";
	SeverityNumber[SeverityNumber["INFO2"] = 10] = "INFO2";
	SeverityNumber[SeverityNumber["INFO3"] = 11] = "INFO3";
	SeverityNumber[SeverityNumber["INFO4"] = 12] = "INFO4";
	SeverityNumber[SeverityNumber["WARN"] = 13] = "WARN";
	SeverityNumber[SeverityNumber["WARN2"] = 14] = "WARN2";
	SeverityNumber[SeverityNumber["WARN3"] = 15] = "WARN3";
	SeverityNumber[SeverityNumber["WARN4"] = 16] = "WARN4";
	SeverityNumber[SeverityNumber["ERROR"] = 17] = "ERROR";
	SeverityNumber[SeverityNumber["ERROR2"] = 18] = "ERROR2";
	SeverityNumber[SeverityNumber["ERROR3"] = 19] = "ERROR3";
	SeverityNumber[SeverityNumber["ERROR4"] = 20] = "ERROR4";
	SeverityNumber[SeverityNumber["FATAL"] = 21] = "FATAL";
	SeverityNumber[SeverityNumber["FATAL2"] = 22] = "FATAL2";
	SeverityNumber[SeverityNumber["FATAL3"] = 23] = "FATAL3";
	SeverityNumber[SeverityNumber["FATAL4"] = 24] = "FATAL4";
	return SeverityNumber;
}({});
//#endregion
exports.SeverityNumber = SeverityNumber;

//# sourceMappingURL=LogRecord.cjs.map

/***/ }),

/***/ 9140:
/***/ ((__unused_webpack_module, exports) => {

//#region src/logs/NoopLogger.ts
var NoopLogger = class {
	emit(_logRecord) {}
	enabled() {
		return false;
	}
};
const NOOP_LOGGER = new NoopLogger();
/**
* Create a no-op Logger
*/
function createNoopLogger() {
	return NOOP_LOGGER;
}
//#endregion
exports.NOOP_LOGGER = NOOP_LOGGER;
exports.NoopLogger = NoopLogger;
exports.createNoopLogger = createNoopLogger;

//# sourceMappingURL=NoopLogger.cjs.map

/***/ }),

/***/ 1995:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_NoopLogger = __nccwpck_require__(9140);
//#region src/logs/NoopLoggerProvider.ts
var NoopLoggerProvider = class {
	getLogger(_name, _version, _options) {
		return new require_NoopLogger.NoopLogger();
	}
};
const NOOP_LOGGER_PROVIDER = new NoopLoggerProvider();
//#endregion
exports.NOOP_LOGGER_PROVIDER = NOOP_LOGGER_PROVIDER;
exports.NoopLoggerProvider = NoopLoggerProvider;

//# sourceMappingURL=NoopLoggerProvider.cjs.map

/***/ }),

/***/ 8916:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_NoopLogger = __nccwpck_require__(9140);
//#region src/logs/ProxyLogger.ts
var ProxyLogger = class {
	constructor(provider, name, version, options) {
		this._provider = provider;
		this.name = name;
		this.version = version;
		this.options = options;
	}
	/**
	* Emit a log record. This method should only be used by log appenders.
	*
	* @param logRecord
	*/
	emit(logRecord) {
		this._getLogger().emit(logRecord);
	}
	enabled(options) {
		return this._getLogger().enabled(options);
	}
	/**
	* Try to get a logger from the proxy logger provider.
	* If the proxy logger provider has no delegate, return a noop logger.
	*/
	_getLogger() {
		if (this._delegate) return this._delegate;
		const logger = this._provider._getDelegateLogger(this.name, this.version, this.options);
		if (!logger) return require_NoopLogger.NOOP_LOGGER;
		this._delegate = logger;
		return this._delegate;
	}
};
//#endregion
exports.ProxyLogger = ProxyLogger;

//# sourceMappingURL=ProxyLogger.cjs.map

/***/ }),

/***/ 9035:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_NoopLoggerProvider = __nccwpck_require__(1995);
const require_ProxyLogger = __nccwpck_require__(8916);
//#region src/logs/ProxyLoggerProvider.ts
var ProxyLoggerProvider = class {
	getLogger(name, version, options) {
		var _this$_getDelegateLog;
		return (_this$_getDelegateLog = this._getDelegateLogger(name, version, options)) !== null && _this$_getDelegateLog !== void 0 ? _this$_getDelegateLog : new require_ProxyLogger.ProxyLogger(this, name, version, options);
	}
	/**
	* Get the delegate logger provider.
	* Used by tests only.
	* @internal
	*/
	_getDelegate() {
		var _this$_delegate;
		return (_this$_delegate = this._delegate) !== null && _this$_delegate !== void 0 ? _this$_delegate : require_NoopLoggerProvider.NOOP_LOGGER_PROVIDER;
	}
	/**
	* Set the delegate logger provider
	* @internal
	*/
	_setDelegate(delegate) {
		this._delegate = delegate;
	}
	/**
	* @internal
	*/
	_getDelegateLogger(name, version, options) {
		var _this$_delegate2;
		return (_this$_delegate2 = this._delegate) === null || _this$_delegate2 === void 0 ? void 0 : _this$_delegate2.getLogger(name, version, options);
	}
};
//#endregion
exports.ProxyLoggerProvider = ProxyLoggerProvider;

//# sourceMappingURL=ProxyLoggerProvider.cjs.map

/***/ }),

/***/ 7876:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/metrics-api.ts
/**
* Entrypoint for metrics API
*
* @since 1.3.0
*/
const metrics = (__nccwpck_require__(3510)/* .MetricsAPI */ .k).getInstance();
//#endregion
exports.metrics = metrics;

//# sourceMappingURL=metrics-api.cjs.map

/***/ }),

/***/ 626:
/***/ ((__unused_webpack_module, exports) => {

//#region src/metrics/Metric.ts
/**
* The Type of value. It describes how the data is reported.
*
* @since 1.3.0
*/
let ValueType = /* @__PURE__ */ function(ValueType) {
	ValueType[ValueType["INT"] = 0] = "INT";
	ValueType[ValueType["DOUBLE"] = 1] = "DOUBLE";
	return ValueType;
}({});
//#endregion
exports.ValueType = ValueType;

//# sourceMappingURL=Metric.cjs.map

/***/ }),

/***/ 1677:
/***/ ((__unused_webpack_module, exports) => {

//#region src/metrics/NoopMeter.ts
/**
* NoopMeter is a noop implementation of the {@link Meter} interface. It reuses
* constant NoopMetrics for all of its methods.
*/
var NoopMeter = class {
	constructor() {}
	/**
	* @see {@link Meter.createGauge}
	*/
	createGauge(_name, _options) {
		return NOOP_GAUGE_METRIC;
	}
	/**
	* @see {@link Meter.createHistogram}
	*/
	createHistogram(_name, _options) {
		return NOOP_HISTOGRAM_METRIC;
	}
	/**
	* @see {@link Meter.createCounter}
	*/
	createCounter(_name, _options) {
		return NOOP_COUNTER_METRIC;
	}
	/**
	* @see {@link Meter.createUpDownCounter}
	*/
	createUpDownCounter(_name, _options) {
		return NOOP_UP_DOWN_COUNTER_METRIC;
	}
	/**
	* @see {@link Meter.createObservableGauge}
	*/
	createObservableGauge(_name, _options) {
		return NOOP_OBSERVABLE_GAUGE_METRIC;
	}
	/**
	* @see {@link Meter.createObservableCounter}
	*/
	createObservableCounter(_name, _options) {
		return NOOP_OBSERVABLE_COUNTER_METRIC;
	}
	/**
	* @see {@link Meter.createObservableUpDownCounter}
	*/
	createObservableUpDownCounter(_name, _options) {
		return NOOP_OBSERVABLE_UP_DOWN_COUNTER_METRIC;
	}
	/**
	* @see {@link Meter.addBatchObservableCallback}
	*/
	addBatchObservableCallback(_callback, _observables) {}
	/**
	* @see {@link Meter.removeBatchObservableCallback}
	*/
	removeBatchObservableCallback(_callback) {}
};
var NoopMetric = class {};
var NoopCounterMetric = class extends NoopMetric {
	add(_value, _attributes) {}
};
var NoopUpDownCounterMetric = class extends NoopMetric {
	add(_value, _attributes) {}
};
var NoopGaugeMetric = class extends NoopMetric {
	record(_value, _attributes) {}
};
var NoopHistogramMetric = class extends NoopMetric {
	record(_value, _attributes) {}
};
var NoopObservableMetric = class {
	addCallback(_callback) {}
	removeCallback(_callback) {}
};
var NoopObservableCounterMetric = class extends NoopObservableMetric {};
var NoopObservableGaugeMetric = class extends NoopObservableMetric {};
var NoopObservableUpDownCounterMetric = class extends NoopObservableMetric {};
const NOOP_METER = new NoopMeter();
const NOOP_COUNTER_METRIC = new NoopCounterMetric();
const NOOP_GAUGE_METRIC = new NoopGaugeMetric();
const NOOP_HISTOGRAM_METRIC = new NoopHistogramMetric();
const NOOP_UP_DOWN_COUNTER_METRIC = new NoopUpDownCounterMetric();
const NOOP_OBSERVABLE_COUNTER_METRIC = new NoopObservableCounterMetric();
const NOOP_OBSERVABLE_GAUGE_METRIC = new NoopObservableGaugeMetric();
const NOOP_OBSERVABLE_UP_DOWN_COUNTER_METRIC = new NoopObservableUpDownCounterMetric();
/**
* Create a no-op Meter
*
* @since 1.3.0
*/
function createNoopMeter() {
	return NOOP_METER;
}
//#endregion
exports.NOOP_COUNTER_METRIC = NOOP_COUNTER_METRIC;
exports.NOOP_GAUGE_METRIC = NOOP_GAUGE_METRIC;
exports.NOOP_HISTOGRAM_METRIC = NOOP_HISTOGRAM_METRIC;
exports.NOOP_METER = NOOP_METER;
exports.NOOP_OBSERVABLE_COUNTER_METRIC = NOOP_OBSERVABLE_COUNTER_METRIC;
exports.NOOP_OBSERVABLE_GAUGE_METRIC = NOOP_OBSERVABLE_GAUGE_METRIC;
exports.NOOP_OBSERVABLE_UP_DOWN_COUNTER_METRIC = NOOP_OBSERVABLE_UP_DOWN_COUNTER_METRIC;
exports.NOOP_UP_DOWN_COUNTER_METRIC = NOOP_UP_DOWN_COUNTER_METRIC;
exports.NoopCounterMetric = NoopCounterMetric;
exports.NoopGaugeMetric = NoopGaugeMetric;
exports.NoopHistogramMetric = NoopHistogramMetric;
exports.NoopMeter = NoopMeter;
exports.NoopMetric = NoopMetric;
exports.NoopObservableCounterMetric = NoopObservableCounterMetric;
exports.NoopObservableGaugeMetric = NoopObservableGaugeMetric;
exports.NoopObservableMetric = NoopObservableMetric;
exports.NoopObservableUpDownCounterMetric = NoopObservableUpDownCounterMetric;
exports.NoopUpDownCounterMetric = NoopUpDownCounterMetric;
exports.createNoopMeter = createNoopMeter;

//# sourceMappingURL=NoopMeter.cjs.map

/***/ }),

/***/ 7554:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_NoopMeter = __nccwpck_require__(1677);
//#region src/metrics/NoopMeterProvider.ts
/**
* An implementation of the {@link MeterProvider} which returns an impotent Meter
* for all calls to `getMeter`
*/
var NoopMeterProvider = class {
	getMeter(_name, _version, _options) {
		return require_NoopMeter.NOOP_METER;
	}
};
const NOOP_METER_PROVIDER = new NoopMeterProvider();
//#endregion
exports.NOOP_METER_PROVIDER = NOOP_METER_PROVIDER;
exports.NoopMeterProvider = NoopMeterProvider;

//# sourceMappingURL=NoopMeterProvider.cjs.map

/***/ }),

/***/ 7045:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/propagation-api.ts
/**
* Entrypoint for propagation API
*
* @since 1.0.0
*/
const propagation = (__nccwpck_require__(3007)/* .PropagationAPI */ .R).getInstance();
//#endregion
exports.propagation = propagation;

//# sourceMappingURL=propagation-api.cjs.map

/***/ }),

/***/ 345:
/***/ ((__unused_webpack_module, exports) => {

//#region src/propagation/NoopTextMapPropagator.ts
/**
* No-op implementations of {@link TextMapPropagator}.
*/
var NoopTextMapPropagator = class {
	/** Noop inject function does nothing */
	inject(_context, _carrier) {}
	/** Noop extract function does nothing and returns the input context */
	extract(context, _carrier) {
		return context;
	}
	fields() {
		return [];
	}
};
//#endregion
exports.NoopTextMapPropagator = NoopTextMapPropagator;

//# sourceMappingURL=NoopTextMapPropagator.cjs.map

/***/ }),

/***/ 3565:
/***/ ((__unused_webpack_module, exports) => {

//#region src/propagation/TextMapPropagator.ts
/**
* @since 1.0.0
*/
const defaultTextMapGetter = {
	get(carrier, key) {
		if (carrier == null) return;
		return carrier[key];
	},
	keys(carrier) {
		if (carrier == null) return [];
		return Object.keys(carrier);
	}
};
/**
* @since 1.0.0
*/
const defaultTextMapSetter = { set(carrier, key, value) {
	if (carrier == null) return;
	carrier[key] = value;
} };
//#endregion
exports.defaultTextMapGetter = defaultTextMapGetter;
exports.defaultTextMapSetter = defaultTextMapSetter;

//# sourceMappingURL=TextMapPropagator.cjs.map

/***/ }),

/***/ 8936:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/trace-api.ts
/**
* Entrypoint for trace API
*
* @since 1.0.0
*/
const trace = (__nccwpck_require__(5446)/* .TraceAPI */ .C).getInstance();
//#endregion
exports.trace = trace;

//# sourceMappingURL=trace-api.cjs.map

/***/ }),

/***/ 5744:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_invalid_span_constants = __nccwpck_require__(3552);
//#region src/trace/NonRecordingSpan.ts
/**
* The NonRecordingSpan is the default {@link Span} that is used when no Span
* implementation is available. All operations are no-op including context
* propagation.
*/
var NonRecordingSpan = class {
	constructor(spanContext = require_invalid_span_constants.INVALID_SPAN_CONTEXT) {
		this._spanContext = spanContext;
	}
	spanContext() {
		return this._spanContext;
	}
	setAttribute(_key, _value) {
		return this;
	}
	setAttributes(_attributes) {
		return this;
	}
	addEvent(_name, _attributes) {
		return this;
	}
	addLink(_link) {
		return this;
	}
	addLinks(_links) {
		return this;
	}
	setStatus(_status) {
		return this;
	}
	updateName(_name) {
		return this;
	}
	end(_endTime) {}
	isRecording() {
		return false;
	}
	recordException(_exception, _time) {}
};
//#endregion
exports.NonRecordingSpan = NonRecordingSpan;

//# sourceMappingURL=NonRecordingSpan.cjs.map

/***/ }),

/***/ 1725:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_context = __nccwpck_require__(8352);
const require_NonRecordingSpan = __nccwpck_require__(5744);
const require_context_utils = __nccwpck_require__(3779);
const require_spancontext_utils = __nccwpck_require__(3723);
//#region src/trace/NoopTracer.ts
const contextApi = require_context.ContextAPI.getInstance();
/**
* No-op implementations of {@link Tracer}.
*/
var NoopTracer = class {
	startSpan(name, options, context = contextApi.active()) {
		if (Boolean(options === null || options === void 0 ? void 0 : options.root)) return new require_NonRecordingSpan.NonRecordingSpan();
		const parentFromContext = context && require_context_utils.getSpanContext(context);
		if (isSpanContext(parentFromContext) && require_spancontext_utils.isSpanContextValid(parentFromContext)) return new require_NonRecordingSpan.NonRecordingSpan(parentFromContext);
		else return new require_NonRecordingSpan.NonRecordingSpan();
	}
	startActiveSpan(name, arg2, arg3, arg4) {
		var _ctx;
		let opts;
		let ctx;
		let fn;
		if (arguments.length < 2) return;
		else if (arguments.length === 2) fn = arg2;
		else if (arguments.length === 3) {
			opts = arg2;
			fn = arg3;
		} else {
			opts = arg2;
			ctx = arg3;
			fn = arg4;
		}
		const parentContext = (_ctx = ctx) !== null && _ctx !== void 0 ? _ctx : contextApi.active();
		const span = this.startSpan(name, opts, parentContext);
		const contextWithSpanSet = require_context_utils.setSpan(parentContext, span);
		return contextApi.with(contextWithSpanSet, fn, void 0, span);
	}
};
function isSpanContext(spanContext) {
	return spanContext !== null && typeof spanContext === "object" && "spanId" in spanContext && typeof spanContext["spanId"] === "string" && "traceId" in spanContext && typeof spanContext["traceId"] === "string" && "traceFlags" in spanContext && typeof spanContext["traceFlags"] === "number";
}
//#endregion
exports.NoopTracer = NoopTracer;

//# sourceMappingURL=NoopTracer.cjs.map

/***/ }),

/***/ 3186:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_NoopTracer = __nccwpck_require__(1725);
//#region src/trace/NoopTracerProvider.ts
/**
* An implementation of the {@link TracerProvider} which returns an impotent
* Tracer for all calls to `getTracer`.
*
* All operations are no-op.
*/
var NoopTracerProvider = class {
	getTracer(_name, _version, _options) {
		return new require_NoopTracer.NoopTracer();
	}
};
//#endregion
exports.b = NoopTracerProvider;

//# sourceMappingURL=NoopTracerProvider.cjs.map

/***/ }),

/***/ 3861:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

//#region src/trace/ProxyTracer.ts
const NOOP_TRACER = new (__nccwpck_require__(1725).NoopTracer)();
/**
* Proxy tracer provided by the proxy tracer provider
*
* @since 1.0.0
*/
var ProxyTracer = class {
	constructor(provider, name, version, options) {
		this._provider = provider;
		this.name = name;
		this.version = version;
		this.options = options;
	}
	startSpan(name, options, context) {
		return this._getTracer().startSpan(name, options, context);
	}
	startActiveSpan(_name, _options, _context, _fn) {
		const tracer = this._getTracer();
		return Reflect.apply(tracer.startActiveSpan, tracer, arguments);
	}
	/**
	* Try to get a tracer from the proxy tracer provider.
	* If the proxy tracer provider has no delegate, return a noop tracer.
	*/
	_getTracer() {
		if (this._delegate) return this._delegate;
		const tracer = this._provider.getDelegateTracer(this.name, this.version, this.options);
		if (!tracer) return NOOP_TRACER;
		this._delegate = tracer;
		return this._delegate;
	}
};
//#endregion
exports.ProxyTracer = ProxyTracer;

//# sourceMappingURL=ProxyTracer.cjs.map

/***/ }),

/***/ 5930:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_ProxyTracer = __nccwpck_require__(3861);
//#region src/trace/ProxyTracerProvider.ts
const NOOP_TRACER_PROVIDER = new (__nccwpck_require__(3186)/* .NoopTracerProvider */ .b)();
/**
* Tracer provider which provides {@link ProxyTracer}s.
*
* Before a delegate is set, tracers provided are NoOp.
*   When a delegate is set, traces are provided from the delegate.
*   When a delegate is set after tracers have already been provided,
*   all tracers already provided will use the provided delegate implementation.
*
* @deprecated This will be removed in the next major version.
* @since 1.0.0
*/
var ProxyTracerProvider = class {
	/**
	* Get a {@link ProxyTracer}
	*/
	getTracer(name, version, options) {
		var _this$getDelegateTrac;
		return (_this$getDelegateTrac = this.getDelegateTracer(name, version, options)) !== null && _this$getDelegateTrac !== void 0 ? _this$getDelegateTrac : new require_ProxyTracer.ProxyTracer(this, name, version, options);
	}
	getDelegate() {
		var _this$_delegate;
		return (_this$_delegate = this._delegate) !== null && _this$_delegate !== void 0 ? _this$_delegate : NOOP_TRACER_PROVIDER;
	}
	/**
	* Set the delegate tracer provider
	*/
	setDelegate(delegate) {
		this._delegate = delegate;
	}
	getDelegateTracer(name, version, options) {
		var _this$_delegate2;
		return (_this$_delegate2 = this._delegate) === null || _this$_delegate2 === void 0 ? void 0 : _this$_delegate2.getTracer(name, version, options);
	}
};
//#endregion
exports.ProxyTracerProvider = ProxyTracerProvider;

//# sourceMappingURL=ProxyTracerProvider.cjs.map

/***/ }),

/***/ 5346:
/***/ ((__unused_webpack_module, exports) => {

//#region src/trace/SamplingResult.ts
/**
* @deprecated use the one declared in @opentelemetry/sdk-trace instead.
* A sampling decision that determines how a {@link Span} will be recorded
* and collected.
*
* @since 1.0.0
*/
let SamplingDecision = /* @__PURE__ */ function(SamplingDecision) {
	/**
	* `Span.isRecording() === false`, span will not be recorded and all events
	* and attributes will be dropped.
	*/
	SamplingDecision[SamplingDecision["NOT_RECORD"] = 0] = "NOT_RECORD";
	/**
	* `Span.isRecording() === true`, but `Sampled` flag in {@link TraceFlags}
	* MUST NOT be set.
	*/
	SamplingDecision[SamplingDecision["RECORD"] = 1] = "RECORD";
	/**
	* `Span.isRecording() === true` AND `Sampled` flag in {@link TraceFlags}
	* MUST be set.
	*/
	SamplingDecision[SamplingDecision["RECORD_AND_SAMPLED"] = 2] = "RECORD_AND_SAMPLED";
	return SamplingDecision;
}({});
//#endregion
exports.SamplingDecision = SamplingDecision;

//# sourceMappingURL=SamplingResult.cjs.map

/***/ }),

/***/ 3779:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_context = __nccwpck_require__(3041);
const require_context$1 = __nccwpck_require__(8352);
const require_NonRecordingSpan = __nccwpck_require__(5744);
//#region src/trace/context-utils.ts
/**
* span key
*/
const SPAN_KEY = require_context.createContextKey("OpenTelemetry Context Key SPAN");
/**
* Return the span if one exists
*
* @param context context to get span from
*/
function getSpan(context) {
	return context.getValue(SPAN_KEY) || void 0;
}
/**
* Gets the span from the current context, if one exists.
*/
function getActiveSpan() {
	return getSpan(require_context$1.ContextAPI.getInstance().active());
}
/**
* Set the span on a context
*
* @param context context to use as parent
* @param span span to set active
*/
function setSpan(context, span) {
	return context.setValue(SPAN_KEY, span);
}
/**
* Remove current span stored in the context
*
* @param context context to delete span from
*/
function deleteSpan(context) {
	return context.deleteValue(SPAN_KEY);
}
/**
* Wrap span context in a NoopSpan and set as span in a new
* context
*
* @param context context to set active span on
* @param spanContext span context to be wrapped
*/
function setSpanContext(context, spanContext) {
	return setSpan(context, new require_NonRecordingSpan.NonRecordingSpan(spanContext));
}
/**
* Get the span context of the span if it exists.
*
* @param context context to get values from
*/
function getSpanContext(context) {
	var _getSpan;
	return (_getSpan = getSpan(context)) === null || _getSpan === void 0 ? void 0 : _getSpan.spanContext();
}
//#endregion
exports.deleteSpan = deleteSpan;
exports.getActiveSpan = getActiveSpan;
exports.getSpan = getSpan;
exports.getSpanContext = getSpanContext;
exports.setSpan = setSpan;
exports.setSpanContext = setSpanContext;

//# sourceMappingURL=context-utils.cjs.map

/***/ }),

/***/ 8457:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_tracestate_validators = __nccwpck_require__(8534);
//#region src/trace/internal/tracestate-impl.ts
const MAX_TRACE_STATE_ITEMS = 32;
const MAX_TRACE_STATE_LEN = 512;
const LIST_MEMBERS_SEPARATOR = ",";
const LIST_MEMBER_KEY_VALUE_SPLITTER = "=";
/**
* TraceState must be a class and not a simple object type because of the spec
* requirement (https://www.w3.org/TR/trace-context/#tracestate-field).
*
* Here is the list of allowed mutations:
* - New key-value pair should be added into the beginning of the list
* - The value of any key can be updated. Modified keys MUST be moved to the
* beginning of the list.
*
* @deprecated Use TraceState from "@opentelemetry/core". This will be removed in the next major version.
*/
var TraceStateImpl = class TraceStateImpl {
	constructor(rawTraceState) {
		this._internalState = /* @__PURE__ */ new Map();
		if (rawTraceState) this._parse(rawTraceState);
	}
	set(key, value) {
		const currValue = this._internalState.get(key);
		let newLength = this.serialize().length;
		if (typeof currValue === "string") newLength += value.length - currValue.length;
		else {
			if (this._internalState.size >= MAX_TRACE_STATE_ITEMS) return this;
			newLength += key.length + value.length + (this._internalState.size > 0 ? 2 : 1);
		}
		if (newLength > MAX_TRACE_STATE_LEN) return this;
		const traceState = this._clone();
		if (traceState._internalState.has(key)) traceState._internalState.delete(key);
		traceState._internalState.set(key, value);
		return traceState;
	}
	unset(key) {
		const traceState = this._clone();
		traceState._internalState.delete(key);
		return traceState;
	}
	get(key) {
		return this._internalState.get(key);
	}
	serialize() {
		return Array.from(this._internalState.keys()).reduceRight((agg, key) => {
			agg.push(key + LIST_MEMBER_KEY_VALUE_SPLITTER + this.get(key));
			return agg;
		}, []).join(LIST_MEMBERS_SEPARATOR);
	}
	_parse(rawTraceState) {
		if (rawTraceState.length > MAX_TRACE_STATE_LEN) return;
		this._internalState = rawTraceState.split(LIST_MEMBERS_SEPARATOR).reduceRight((agg, part) => {
			const listMember = part.trim();
			const i = listMember.indexOf(LIST_MEMBER_KEY_VALUE_SPLITTER);
			if (i !== -1) {
				const key = listMember.slice(0, i);
				const value = listMember.slice(i + 1, part.length);
				if (require_tracestate_validators.validateKey(key) && require_tracestate_validators.validateValue(value)) agg.set(key, value);
			}
			return agg;
		}, /* @__PURE__ */ new Map());
		if (this._internalState.size > MAX_TRACE_STATE_ITEMS) this._internalState = new Map(Array.from(this._internalState.entries()).reverse().slice(0, MAX_TRACE_STATE_ITEMS));
	}
	_keys() {
		return Array.from(this._internalState.keys()).reverse();
	}
	_clone() {
		const traceState = new TraceStateImpl();
		traceState._internalState = new Map(this._internalState);
		return traceState;
	}
};
//#endregion
exports.TraceStateImpl = TraceStateImpl;

//# sourceMappingURL=tracestate-impl.cjs.map

/***/ }),

/***/ 8534:
/***/ ((__unused_webpack_module, exports) => {

//#region src/trace/internal/tracestate-validators.ts
const VALID_KEY_CHAR_RANGE = "[_0-9a-z-*/]";
const VALID_KEY_REGEX = new RegExp(`^(?:${`[a-z]${VALID_KEY_CHAR_RANGE}{0,255}`}|${`[a-z0-9]${VALID_KEY_CHAR_RANGE}{0,240}@[a-z]${VALID_KEY_CHAR_RANGE}{0,13}`})$`);
const VALID_VALUE_BASE_REGEX = /^[ -~]{0,255}[!-~]$/;
const INVALID_VALUE_COMMA_EQUAL_REGEX = /,|=/;
/**
* Key is opaque string up to 256 characters printable. It MUST begin with a
* lowercase letter, and can only contain lowercase letters a-z, digits 0-9,
* underscores _, dashes -, asterisks *, and forward slashes /.
* For multi-tenant vendor scenarios, an at sign (@) can be used to prefix the
* vendor name. Vendors SHOULD set the tenant ID at the beginning of the key.
* see https://www.w3.org/TR/trace-context/#key
*/
function validateKey(key) {
	return VALID_KEY_REGEX.test(key);
}
/**
* Value is opaque string up to 256 characters printable ASCII RFC0020
* characters (i.e., the range 0x20 to 0x7E) except comma , and =.
*/
function validateValue(value) {
	return VALID_VALUE_BASE_REGEX.test(value) && !INVALID_VALUE_COMMA_EQUAL_REGEX.test(value);
}
//#endregion
exports.validateKey = validateKey;
exports.validateValue = validateValue;

//# sourceMappingURL=tracestate-validators.cjs.map

/***/ }),

/***/ 2219:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

const require_tracestate_impl = __nccwpck_require__(8457);
//#region src/trace/internal/utils.ts
/**
* @deprecated Use TraceState from "@opentelemetry/core". This will be removed in the next major version.
* @since 1.1.0
*/
function createTraceState(rawTraceState) {
	return new require_tracestate_impl.TraceStateImpl(rawTraceState);
}
//#endregion
exports.createTraceState = createTraceState;

//# sourceMappingURL=utils.cjs.map

/***/ }),

/***/ 3552:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

__nccwpck_require__(3245);
//#region src/trace/invalid-span-constants.ts
/**
* @since 1.0.0
*/
const INVALID_SPANID = "0000000000000000";
/**
* @since 1.0.0
*/
const INVALID_TRACEID = "00000000000000000000000000000000";
/**
* @since 1.0.0
*/
const INVALID_SPAN_CONTEXT = {
	traceId: INVALID_TRACEID,
	spanId: INVALID_SPANID,
	traceFlags: 0
};
//#endregion
exports.INVALID_SPANID = INVALID_SPANID;
exports.INVALID_SPAN_CONTEXT = INVALID_SPAN_CONTEXT;
exports.INVALID_TRACEID = INVALID_TRACEID;

//# sourceMappingURL=invalid-span-constants.cjs.map

/***/ }),

/***/ 7483:
/***/ ((__unused_webpack_module, exports) => {

//#region src/trace/span_kind.ts
/**
* @since 1.0.0
*/
let SpanKind = /* @__PURE__ */ function(SpanKind) {
	/** Default value. Indicates that the span is used internally. */
	SpanKind[SpanKind["INTERNAL"] = 0] = "INTERNAL";
	/**
	* Indicates that the span covers server-side handling of an RPC or other
	* remote request.
	*/
	SpanKind[SpanKind["SERVER"] = 1] = "SERVER";
	/**
	* Indicates that the span covers the client-side wrapper around an RPC or
	* other remote request.
	*/
	SpanKind[SpanKind["CLIENT"] = 2] = "CLIENT";
	/**
	* Indicates that the span describes producer sending a message to a
	* broker. Unlike client and server, there is no direct critical path latency
	* relationship between producer and consumer spans.
	*/
	SpanKind[SpanKind["PRODUCER"] = 3] = "PRODUCER";
	/**
	* Indicates that the span describes consumer receiving a message from a
	* broker. Unlike client and server, there is no direct critical path latency
	* relationship between producer and consumer spans.
	*/
	SpanKind[SpanKind["CONSUMER"] = 4] = "CONSUMER";
	return SpanKind;
}({});
//#endregion
exports.SpanKind = SpanKind;

//# sourceMappingURL=span_kind.cjs.map

/***/ }),

/***/ 3723:
/***/ ((__unused_webpack_module, exports, __nccwpck_require__) => {

__nccwpck_require__(3552);
const require_NonRecordingSpan = __nccwpck_require__(5744);
//#region src/trace/spancontext-utils.ts
const isHex = new Uint8Array([
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	1,
	1,
	1,
	1,
	1,
	1,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	1,
	1,
	1,
	1,
	1,
	1
]);
function isValidHex(id, length) {
	if (typeof id !== "string" || id.length !== length) return false;
	let r = 0;
	for (let i = 0; i < id.length; i += 4) r += (isHex[id.charCodeAt(i)] | 0) + (isHex[id.charCodeAt(i + 1)] | 0) + (isHex[id.charCodeAt(i + 2)] | 0) + (isHex[id.charCodeAt(i + 3)] | 0);
	return r === length;
}
/**
* @since 1.0.0
*/
function isValidTraceId(traceId) {
	return isValidHex(traceId, 32) && traceId !== "00000000000000000000000000000000";
}
/**
* @since 1.0.0
*/
function isValidSpanId(spanId) {
	return isValidHex(spanId, 16) && spanId !== "0000000000000000";
}
/**
* Returns true if this {@link SpanContext} is valid.
* @return true if this {@link SpanContext} is valid.
*
* @since 1.0.0
*/
function isSpanContextValid(spanContext) {
	return isValidTraceId(spanContext.traceId) && isValidSpanId(spanContext.spanId);
}
/**
* Wrap the given {@link SpanContext} in a new non-recording {@link Span}
*
* @param spanContext span context to be wrapped
* @returns a new non-recording {@link Span} with the provided context
*/
function wrapSpanContext(spanContext) {
	return new require_NonRecordingSpan.NonRecordingSpan(spanContext);
}
//#endregion
exports.isSpanContextValid = isSpanContextValid;
exports.isValidSpanId = isValidSpanId;
exports.isValidTraceId = isValidTraceId;
exports.wrapSpanContext = wrapSpanContext;

//# sourceMappingURL=spancontext-utils.cjs.map

/***/ }),

/***/ 7632:
/***/ ((__unused_webpack_module, exports) => {

//#region src/trace/status.ts
/**
* An enumeration of status codes.
*
* @since 1.0.0
*/
let SpanStatusCode = /* @__PURE__ */ function(SpanStatusCode) {
	/**
	* The default status.
	*/
	SpanStatusCode[SpanStatusCode["UNSET"] = 0] = "UNSET";
	/**
	* The operation has been validated by an Application developer or
	* Operator to have completed successfully.
	*/
	SpanStatusCode[SpanStatusCode["OK"] = 1] = "OK";
	/**
	* The operation contains an error.
	*/
	SpanStatusCode[SpanStatusCode["ERROR"] = 2] = "ERROR";
	return SpanStatusCode;
}({});
//#endregion
exports.SpanStatusCode = SpanStatusCode;

//# sourceMappingURL=status.cjs.map

/***/ }),

/***/ 3245:
/***/ ((__unused_webpack_module, exports) => {

//#region src/trace/trace_flags.ts
/**
* @since 1.0.0
*/
let TraceFlags = /* @__PURE__ */ function(TraceFlags) {
	/** Represents no flag set. */
	TraceFlags[TraceFlags["NONE"] = 0] = "NONE";
	/** Bit to represent whether trace is sampled in trace flags. */
	TraceFlags[TraceFlags["SAMPLED"] = 1] = "SAMPLED";
	return TraceFlags;
}({});
//#endregion
exports.TraceFlags = TraceFlags;

//# sourceMappingURL=trace_flags.cjs.map

/***/ }),

/***/ 9128:
/***/ ((__unused_webpack_module, exports) => {

//#region src/version.ts
const VERSION = "1.10.0";
//#endregion
exports.VERSION = VERSION;

//# sourceMappingURL=version.cjs.map

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
