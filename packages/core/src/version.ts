/** The prov release; extensions' min_prov_version is checked against it. */
export const PROV_VERSION = '0.1.0'
