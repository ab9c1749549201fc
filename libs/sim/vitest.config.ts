import { accordVitestConfig } from '../../vitest.shared.js';

export default accordVitestConfig();
