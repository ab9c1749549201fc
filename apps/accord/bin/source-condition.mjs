// Module resolution hook: resolve workspace libraries to their TypeScript source
// through the `@accord/source` export condition, so the CLI runs without a build.
export async function resolve(specifier, context, nextResolve) {
  const conditions = context.conditions.includes('@accord/source')
    ? context.conditions
    : ['@accord/source', ...context.conditions];
  return nextResolve(specifier, { ...context, conditions });
}
