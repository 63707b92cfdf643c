// Resolves the @idlc/* workspace aliases (tsconfig "paths") for a child process run through ts-node.
'use strict';
const Module = require('module');
const path = require('path');

const root = path.resolve(__dirname, '../../..');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const m = /^@idlc\/(domain|event-store|sql|sso-verification|engine)$/.exec(request);
  return resolveFilename.call(this, m ? path.join(root, 'libs', m[1], 'src') : request, ...rest);
};
