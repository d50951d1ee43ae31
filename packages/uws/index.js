'use strict';
// hyper-express requires 'uWebSockets.js'. The trufflesuite build ships binaries for
// Node 16/18/20 only (elsewhere a stub whose Server throws "Not implemented"); the btc-vision
// build covers Node 22+ but needs glibc >= 2.38.
const major = Number(process.versions.node.split('.')[0]);
module.exports = major >= 22
  ? require('@btc-vision/uwebsockets.js')
  : require('@trufflesuite/uws-js-unofficial');
