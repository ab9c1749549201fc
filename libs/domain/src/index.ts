export * from './dates.js';
export * from './antigens.js';
export * from './catalogue.js';
export * from './projection.js';
export * from './status.js';
export * from './clock-skew.js';
export * from './draft.js';
