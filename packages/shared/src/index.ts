export * from './errors.js'
export * from './common.js'
export * from './client.js'
