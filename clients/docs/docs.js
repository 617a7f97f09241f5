// Starts Swagger UI on the gateway's OpenAPI document. The page is served by
// the gateway it documents (chat-gateway, or chat-server's --http_listen
// port), so "Try it out" calls the same origin and the document needs no
// `servers`. Nothing is fetched from anywhere else: the online validator
// badge would send the document's URL to validator.swagger.io, so it is off.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
  // The key given to "Authorize" survives a reload (kept in this browser's
  // localStorage, as the chat app keeps its key).
  persistAuthorization: true,
});
