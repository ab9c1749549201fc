// The page's entry point, bundled by apps/accord/bin/bundle.mjs into app.js (and app.css).
import { render } from 'preact';
import { App } from './app.js';
import { syncCentreStrings } from './strings.js';
import './style.css';

const root = document.getElementById('app');
if (root !== null) render(<App t={syncCentreStrings(navigator.language)} />, root);
