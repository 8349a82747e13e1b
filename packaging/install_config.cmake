# Run by `cmake --install` (see CMakeLists.txt): installs the configuration
# WEIR_CONFIG_SRC as WEIR_CONFDIR/weir.ini unless a file is there already,
# so reinstalling never overwrites an admin's edits.
set(dest "$ENV{DESTDIR}${WEIR_CONFDIR}/weir.ini")
if(EXISTS "${dest}")
  message(STATUS "Keeping existing: ${dest}")
else()
  # file(INSTALL) adds DESTDIR itself.
  file(INSTALL "${WEIR_CONFIG_SRC}" DESTINATION "${WEIR_CONFDIR}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
