#!/usr/bin/env bash
# Creates an empty project in the house layout: tools/scaffold.sh libs/NAME TAG [pure|node]
set -euo pipefail
dir=$1; tag=$2; kind=${3:-node}
name=$(basename "$dir")
mkdir -p "$dir/src"
rel=$(realpath --relative-to="$dir" .)
if [ "$kind" = pure ]; then libs='["ES2023", "DOM"]'; types='[]'; else libs='["ES2023"]'; types='["node"]'; fi
cat > "$dir/package.json" <<JSON
{
  "name": "@accord/$name",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "exports": {
    ".": { "@accord/source": "./src/index.ts", "types": "./dist/index.d.ts", "default": "./dist/index.js" }
  },
  "scripts": {
    "test": "vitest run",
    "typecheck": "tsc -p tsconfig.lib.json && tsc -p tsconfig.spec.json",
    "lint": "eslint src"
  },
  "nx": { "tags": ["$tag"] }
}
JSON
cat > "$dir/tsconfig.json" <<JSON
{
  "files": [],
  "references": [{ "path": "./tsconfig.lib.json" }, { "path": "./tsconfig.spec.json" }]
}
JSON
cat > "$dir/tsconfig.lib.json" <<JSON
{
  "extends": "$rel/tsconfig.base.json",
  "compilerOptions": { "lib": $libs, "types": $types },
  "include": ["src/**/*.ts"],
  "exclude": ["src/**/*.test.ts"]
}
JSON
cat > "$dir/tsconfig.spec.json" <<JSON
{
  "extends": "$rel/tsconfig.base.json",
  "compilerOptions": { "lib": ["ES2023", "DOM"], "types": ["node"] },
  "include": ["src/**/*.ts", "vitest.config.ts"]
}
JSON
cat > "$dir/vitest.config.ts" <<TS
import { accordVitestConfig } from '$rel/vitest.shared.js';

export default accordVitestConfig();
TS
