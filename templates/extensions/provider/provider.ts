// A prov provider: loaded with jiti; implements the provider interface (docs/prov-server.md).
export default {
  name: '{{template.name}}',
  capabilities: { create: true, delete: true, start: false, stop: false },
}
