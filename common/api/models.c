#include "api/models.h"
#include "jsonval.h"

void ai_models_release(struct ai_models *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].id);
		free(m->v[i].owned_by);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* Appends the model an entry describes; an entry without a usable name is skipped. */
static int add_entry(struct ai_models *m, json_object *it, size_t cap)
{
	const char *id = jv_str(it, "id"), *owner = jv_str(it, "owned_by");
	struct ai_model *x;

	if (!id)
		id = jv_str(it, "model");
	if (!id)
		id = jv_str(it, "name");
	if (!id || !*id)
		return 0;
	if (m->n == cap)
		return -1;
	x = &m->v[m->n];
	x->owned_by = NULL;
	if (!(x->id = strdup(id)) || (owner && !(x->owned_by = strdup(owner)))) {
		free(x->id);
		return -1;
	}
	m->n++;
	return 0;
}

int ai_models_parse(const char *body, size_t len, const char *host, struct ai_models *out,
		    struct ai_err *err)
{
	json_tokener *tok = json_tokener_new();
	json_object *j = NULL, *list = NULL;
	size_t n;
	int rc = -1;

	out->v = NULL;
	out->n = 0;
	if (!tok)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (len < INT_MAX)
		j = json_tokener_parse_ex(tok, body ? body : "", (int)len);
	if (!j || json_tokener_get_error(tok) != json_tokener_success) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s to GET /models is not JSON", host);
		goto out;
	}
	if (json_object_is_type(j, json_type_array))
		list = j;
	else if (!json_object_is_type(j, json_type_object) ||
		 ((!json_object_object_get_ex(j, "data", &list) ||
		   !json_object_is_type(list, json_type_array)) &&
		  (!json_object_object_get_ex(j, "models", &list) ||
		   !json_object_is_type(list, json_type_array))))
		list = NULL;
	if (!list) {
		ai_errf(err, AI_EX_UNAVAILABLE,
			"the answer from %s to GET /models is not a list of models (no \"data\" array)", host);
		goto out;
	}
	n = json_object_array_length(list);
	if (n && !(out->v = calloc(n, sizeof(*out->v)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(list, i);

		if (json_object_is_type(it, json_type_object) && add_entry(out, it, n)) {
			ai_models_release(out);
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	json_object_put(j);
	json_tokener_free(tok);
	return rc;
}

int ai_models_list(struct ai_client *c, struct ai_models *out, struct ai_err *err)
{
	struct http_resp r;
	int rc;

	out->v = NULL;
	out->n = 0;
	http_resp_init(&r);
	rc = ai_api_request(c, "GET", "/models", NULL, NULL, 0, &r, err);
	if (rc < 0 && err && err->status == 404) {
		char m[160];

		/* Not a model's fault here, as the generic 404 hint would say: the list is missing. */
		ai_error_message(r.body.data, r.body.len, m, sizeof(m));
		ai_errf(err, AI_EX_UNAVAILABLE,
			"GET /models: the server answered 404: %s; %s lists no models there: check the "
			"base URL (OpenAI-compatible servers serve /v1/models)", m, ai_client_host(c));
		err->status = 404;
	}
	if (!rc)
		rc = ai_models_parse(r.body.data, r.body.len, ai_client_host(c), out, err);
	http_resp_release(&r);
	return rc;
}
