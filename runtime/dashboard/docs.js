// Swagger UI for the lab's OpenAPI schema. A file rather than an inline script, so /docs keeps
// the dashboard's Content-Security-Policy (script-src 'self').

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // never ask an online validator: the lab may be offline
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
