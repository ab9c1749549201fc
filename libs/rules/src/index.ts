export * from './rule-ids.js';
export * from './validate.js';
