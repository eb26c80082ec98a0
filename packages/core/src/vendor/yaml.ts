// The yaml package ships as ~80 CommonJS modules; built as this one file (the core build inlines
// yaml), a command that reads YAML resolves and compiles one module instead of all of them.
export * from 'yaml'
