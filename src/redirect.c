/*
 * redirect: the `return` and `redirect` handlers (see the header). Not
 * here: the status line and framing (the front end), error pages
 * (http_resp). Both answer inside start and hold nothing afterwards.
 */
#include "weir/redirect.h"

static int start_return(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, route->status, ex->clock);
    if (route->return_body_len > 0)
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE,
                      route->return_type ? wr_str_from_cstr(route->return_type)
                                         : WR_STR("text/plain; charset=utf-8"));
    r->body = route->return_body;
    r->body_len = route->return_body_len;
    r->has_length = true;
    wr_exchange_respond(ex);
    return 0;
}

static int start_redirect(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, route->status, ex->clock);
    size_t at = r->head_len;
    wr_resp_header_tmpl(r, "Location", &route->redirect_target, ex->vars);
    wr_resp_mark_field(r, WR_HTTP_FIELD_LOCATION, at);
    wr_resp_set_page(r);
    wr_exchange_respond(ex);
    return 0;
}

const struct wr_handler wr_return_handler = {
    .name = "return",
    .start = start_return,
};

const struct wr_handler wr_redirect_handler = {
    .name = "redirect",
    .start = start_redirect,
};
