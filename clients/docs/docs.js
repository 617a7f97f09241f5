// Starts Swagger UI on the gateway's OpenAPI document. The page is served by
// the gateway it documents, so "Try it out" calls the same origin.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: false,
  persistAuthorization: true,
});
