# The Debian package (`make deb`: cpack -G DEB in build/deb, configured with
# CMAKE_INSTALL_PREFIX=/usr). CPack has no debhelper: what dh_* would add
# (maintainer scripts, conffiles, copyright, changelog.Debian.gz, gzipped
# man pages, shlibdeps) is spelled out here and in packaging/deb/.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME weir)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGE_CONTACT "weir developers <weir@example.org>" CACHE STRING
    "Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "reverse proxy and static file server")
# The extended description: CPack indents each line and writes the synopsis
# (CPACK_PACKAGE_DESCRIPTION_SUMMARY) above it; an empty line becomes " .".
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "weir is an HTTP/1.1 reverse proxy and static file server for Linux. Each
request's host, path and method are matched against routes in file order;
the route serves files, forwards to a pool of backend servers (balancing,
health checks, TLS), redirects, or returns a fixed response. It runs under
systemd as an unprivileged user, is configured by one ini file, and
reloads without dropping connections.

The package installs weir.service, weir@.service and weir.socket without
enabling them.")
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
# Absolute destinations (/etc/weir, the unit directory) stay inside the
# staging tree only through DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

set(WEIR_DEB_VERSION ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
set(WEIR_DEB_DIR ${PROJECT_BINARY_DIR}/deb)
file(WRITE ${WEIR_DEB_DIR}/conffiles "${WEIR_CONFIG}\n${WEIR_LOGROTATEDIR}/weir\n")
foreach(script postinst prerm postrm)
  file(COPY ${PROJECT_SOURCE_DIR}/packaging/deb/${script} DESTINATION ${WEIR_DEB_DIR}
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${WEIR_DEB_DIR}/conffiles ${WEIR_DEB_DIR}/postinst ${WEIR_DEB_DIR}/prerm
    ${WEIR_DEB_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# /usr/share/doc/weir: copyright and the Debian changelog (policy 12.5, 12.7);
# the changelog only in the package (make deb sets WEIR_DEB).
option(WEIR_DEB "Install what only the Debian package has (changelog.Debian.gz)" OFF)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/deb/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
if(WEIR_DEB)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/deb/changelog.in ${WEIR_DEB_DIR}/changelog @ONLY)
  add_custom_command(
    OUTPUT ${WEIR_DEB_DIR}/changelog.Debian.gz
    COMMAND ${GZIP} -9nc ${WEIR_DEB_DIR}/changelog > ${WEIR_DEB_DIR}/changelog.Debian.gz
    DEPENDS ${WEIR_DEB_DIR}/changelog)
  add_custom_target(deb_changelog ALL DEPENDS ${WEIR_DEB_DIR}/changelog.Debian.gz)
  install(FILES ${WEIR_DEB_DIR}/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

include(CPack)
